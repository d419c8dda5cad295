//! The broker's side of a process's connections to it, read from Linux's
//! `/proc`: a test can wait until the broker has closed every connection of a
//! killed client, that is until it can no longer read a request the client sent
//! before it died.

use std::collections::HashSet;

/// The broker-side sockets (inodes) of one process's connections to the broker
/// listening on a port, and the processes holding them.
pub struct BrokerSide {
    inodes: HashSet<u64>,
    holders: HashSet<u32>,
}

impl BrokerSide {
    /// The broker-side sockets of `pid`'s TCP connections to `port`, found
    /// while `pid` still runs. Empty when the broker is not on this host.
    pub fn of(pid: u32, port: u16) -> BrokerSide {
        let mine = socket_inodes(pid);
        let rows = tcp_rows();
        let ends: HashSet<(&str, &str)> = (rows.iter())
            .filter(|r| mine.contains(&r.inode) && r.remote_port() == Some(port))
            .map(|r| (r.local.as_str(), r.remote.as_str()))
            .collect();
        // The same connection seen from the broker: the two ends swapped.
        let inodes: HashSet<u64> = (rows.iter())
            .filter(|r| r.inode != 0 && ends.contains(&(r.remote.as_str(), r.local.as_str())))
            .map(|r| r.inode)
            .collect();
        let holders = (pids().into_iter())
            .filter(|&p| p != pid && socket_inodes(p).iter().any(|i| inodes.contains(i)))
            .collect();
        BrokerSide { inodes, holders }
    }

    /// Whether no connection was found (a broker on another host).
    pub fn is_empty(&self) -> bool {
        self.inodes.is_empty()
    }

    /// Whether the broker still holds one of the sockets (it closes one only
    /// after the last request read from it was handled).
    pub fn still_open(&self) -> bool {
        (self.holders.iter()).any(|&p| socket_inodes(p).iter().any(|i| self.inodes.contains(i)))
    }
}

/// One row of `/proc/net/tcp` or `tcp6`: the two ends as the kernel prints them
/// (`ADDR:PORT`, hexadecimal) and the socket's inode.
struct TcpRow {
    local: String,
    remote: String,
    inode: u64,
}

impl TcpRow {
    fn remote_port(&self) -> Option<u16> {
        u16::from_str_radix(self.remote.rsplit(':').next()?, 16).ok()
    }
}

fn tcp_rows() -> Vec<TcpRow> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            (text.lines().skip(1))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    Some(TcpRow {
                        local: f.get(1)?.to_string(),
                        remote: f.get(2)?.to_string(),
                        inode: f.get(9)?.parse().ok()?,
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The inodes of the sockets `pid` has open (none once it is gone).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| {
        let link = std::fs::read_link(fd.ok()?.path()).ok()?;
        let link = link.to_str()?;
        link.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
