//! Domain values shared by every stage (a leaf: imports nothing from the crate).
//!
//! Each is parsed once, where it enters (decoding a record, loading the config),
//! and carried as an enum from there; the names users write are the serde and
//! `strum` spellings below, listed in one place.

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray};

/// Implements `as_str`, `parse`, `names` and `Display` from the strum derives.
macro_rules! named {
    ($t:ty) => {
        impl $t {
            /// The name users write.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The value with this name.
            pub fn parse(name: &str) -> Option<Self> {
                name.parse().ok()
            }

            /// The value with this name, or `unknown {what} "x" (a | b | c)`.
            pub fn parse_listed(name: &str, what: &str) -> Result<Self, String> {
                Self::parse(name)
                    .ok_or_else(|| format!("unknown {what} {name:?} ({})", Self::names()))
            }

            /// The value's code in decoded Arrow columns (its declaration index).
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The value with this code, `None` for a code no value has.
            pub fn from_code(code: u8) -> Option<Self> {
                <$t as VariantArray>::VARIANTS
                    .get(usize::from(code))
                    .copied()
            }

            /// Every name, `a | b | c`, for error messages.
            pub fn names() -> String {
                <$t as VariantArray>::VARIANTS
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A domain enum: the derives every one has, and `as_str`, `parse`, `names`
/// and `Display` from the strum derives.
macro_rules! domain_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            Serialize,
            Deserialize,
            EnumString,
            IntoStaticStr,
            VariantArray,
        )]
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }
        named!($name);
    };
}

domain_enum! {
    /// Which input topic (or replay file kind) a record comes from.
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum Topic {
        /// `monitoring.events`: probes, metrics, maintenance; key = service.
        Monitoring,
        /// `tickets.events`: ticket lifecycle; key = ticket.
        Tickets,
    }
}

impl Topic {
    /// Both topics, in a fixed order.
    pub const ALL: [Topic; 2] = [Topic::Monitoring, Topic::Tickets];

    /// Stable index, for per-topic arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

domain_enum! {
    /// An incident rule (contract section 5).
    #[derive(utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    #[strum(serialize_all = "snake_case")]
    pub enum Rule {
        /// A service down for `outage_after`.
        Outage,
        /// A service's monthly downtime budget spent.
        AvailabilityBreach,
        /// A ticket's response clock reached `warn_at` of its target.
        ResponseWarning,
        /// A ticket's resolution clock reached `warn_at` of its target.
        ResolutionWarning,
        /// A ticket's response clock passed its target.
        ResponseBreach,
        /// A ticket's resolution clock passed its target.
        ResolutionBreach,
        /// A service's error budget burning fast over two windows (section 11).
        BurnRate,
        /// A request SLO's error budget burning fast over two windows (section 14).
        SloBurnRate,
        /// A resource above its capacity threshold for `sustain`.
        Capacity,
    }
}

domain_enum! {
    /// An incident severity.
    #[derive(utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum Severity {
        /// Page now.
        Critical,
        /// Page in business hours.
        Major,
        /// Ticket.
        Minor,
        /// Information.
        Warning,
    }
}

domain_enum! {
    /// An incident action: `trigger` or `resolve`.
    #[derive(utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum Action {
        /// The incident starts.
        Trigger,
        /// The incident ends.
        Resolve,
    }
}

domain_enum! {
    /// A ticket priority.
    #[derive(utoipa::ToSchema)]
    pub enum Priority {
        /// Highest.
        P1,
        /// High.
        P2,
        /// Medium.
        P3,
        /// Low.
        P4,
    }
}

domain_enum! {
    /// A ticket kind.
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum TicketKind {
        /// Something is broken.
        Incident,
        /// Something is asked for.
        Request,
    }
}

domain_enum! {
    /// A ticket event's `type`.
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum TicketEventType {
        /// The ticket is opened.
        Created,
        /// The first response.
        Responded,
        /// A status change.
        Status,
        /// A priority change.
        Priority,
    }
}

domain_enum! {
    /// A monitoring event's `kind`.
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum MonitoringKind {
        /// A probe result.
        Probe,
        /// A capacity sample.
        Metric,
        /// An announced maintenance window.
        Maintenance,
        /// An audited exclusion from the SLA (contract section 13).
        Exclusion,
        /// A cumulative event counter sample (contract section 14).
        Counter,
        /// A deployed change (contract section 15).
        Change,
    }
}

domain_enum! {
    /// A change's `outcome` (contract section 15).
    #[serde(rename_all = "snake_case")]
    #[strum(serialize_all = "snake_case")]
    pub enum ChangeOutcome {
        /// Deployed as planned.
        Success,
        /// The deployment failed.
        Failed,
        /// Deployed, then rolled back.
        RolledBack,
    }
}

domain_enum! {
    /// A probe's `status`.
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum ProbeStatus {
        /// Answering normally.
        #[serde(alias = "Up")] // as checkpoints before the typed model spelled it
        Up,
        /// Answering, but not well.
        #[serde(alias = "Degraded")]
        Degraded,
        /// Not answering.
        #[serde(alias = "Down")]
        Down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_as_users_write_them() {
        assert_eq!(Rule::AvailabilityBreach.as_str(), "availability_breach");
        assert_eq!(
            Rule::parse("resolution_warning"),
            Some(Rule::ResolutionWarning)
        );
        assert_eq!(Rule::parse("Outage"), None);
        assert_eq!(Priority::parse("P3"), Some(Priority::P3));
        assert_eq!(Severity::names(), "critical | major | minor | warning");
        assert_eq!(TicketKind::names(), "incident | request");
        assert_eq!(Topic::parse("tickets"), Some(Topic::Tickets));
        for &k in MonitoringKind::VARIANTS {
            assert_eq!(MonitoringKind::from_code(k.code()), Some(k));
        }
        for &p in Priority::VARIANTS {
            assert_eq!(Priority::from_code(p.code()), Some(p));
        }
        assert_eq!(ChangeOutcome::from_code(3), None);
        for r in Rule::VARIANTS {
            let json = serde_json::to_string(r).expect("serialises");
            assert_eq!(json, format!("\"{r}\""));
        }
    }
}
