//! Where a pack's file differs from the re-derived one, named for a person: a
//! JSON field path, an NDJSON line and field, a CSV column, or an HTML cell.

use serde_json::Value;

/// Where `found` first differs from `expected`, or `None` if they are the same
/// apart from `generated_at`: a JSON field path, a line, or a CSV column.
pub(super) fn first_difference(name: &str, expected: &[u8], found: &[u8]) -> Option<String> {
    if expected == found {
        return None;
    }
    if name.ends_with(".json") {
        return json_difference(expected, found, "");
    }
    let (e, f) = (
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(found),
    );
    let mut lines = e.lines().zip(f.lines()).enumerate();
    let header = e.lines().next().unwrap_or("");
    if let Some((n, (a, b))) = lines.find(|(_, (a, b))| a != b) {
        let at = format!("line {}", n + 1);
        return Some(if name.ends_with(".ndjson") {
            (json_difference(a.as_bytes(), b.as_bytes(), &format!("{at}: ")))
                .unwrap_or_else(|| format!("{at} differs"))
        } else if name.ends_with(".csv") {
            csv_difference(header, a, b, &at)
        } else {
            text_difference(a, b, &at)
        });
    }
    let (ne, nf) = (e.lines().count(), f.lines().count());
    Some(if ne == nf {
        "bytes differ (line endings)".into()
    } else {
        format!("{nf} lines, re-derived {ne}")
    })
}

/// Where two lines of text first differ, with some context; in HTML, also the
/// report field of the enclosing cell (its `data-field`), if any.
fn text_difference(expected: &str, found: &str, at: &str) -> String {
    let i = (expected.char_indices().zip(found.chars()))
        .find(|((_, a), b)| a != b)
        .map_or(expected.len().min(found.len()), |((i, _), _)| i);
    let around = |s: &str| -> String {
        let start = s.floor_char_boundary(i.saturating_sub(40));
        let end = s.ceil_char_boundary((i + 40).min(s.len()));
        s[start..end].to_owned()
    };
    let before = &expected[..expected.floor_char_boundary(i)];
    let attr = |name: &str| {
        let key = format!("{name}=\"");
        let from = before.rfind(&key)? + key.len();
        let len = before[from..].find('"')?;
        Some(before[from..from + len].to_owned())
    };
    // A cell's field only while still inside that cell.
    let cell = attr("data-field")
        .filter(|_| !before[before.rfind("data-field=").unwrap_or(0)..].contains("</td>"));
    let field = match (attr("data-service"), cell) {
        (Some(s), Some(f)) => format!(" (service {s}, field {f})"),
        (Some(s), None) => format!(" (service {s})"),
        _ => String::new(),
    };
    format!(
        "{at}, character {}{field}: expected {:?}, found {:?}",
        i + 1,
        around(expected),
        around(found)
    )
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

fn json_difference(expected: &[u8], found: &[u8], prefix: &str) -> Option<String> {
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b);
    let (Ok(e), Ok(f)) = (parse(expected), parse(found)) else {
        return Some(format!("{prefix}not the JSON re-derived (unreadable)"));
    };
    json_path_difference(&e, &f, String::new()).map(|(path, e, f)| {
        let path = if path.is_empty() {
            "(document)".into()
        } else {
            path
        };
        format!("{prefix}field {path} is {f}, re-derived {e}")
    })
}

/// The first path where two JSON values differ, skipping `generated_at`.
fn json_path_difference(e: &Value, f: &Value, path: String) -> Option<(String, String, String)> {
    let show = |v: Option<&Value>| v.map_or("missing".into(), |v| clip(&v.to_string()));
    let children: Vec<(String, Option<&Value>, Option<&Value>)> = match (e, f) {
        (Value::Object(a), Value::Object(b)) => (a.keys())
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .filter(|k| *k != "generated_at")
            .map(|k| {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                (sub, a.get(k), b.get(k))
            })
            .collect(),
        (Value::Array(a), Value::Array(b)) => (0..a.len().max(b.len()))
            .map(|i| (format!("{path}[{i}]"), a.get(i), b.get(i)))
            .collect(),
        _ => return (e != f).then(|| (path, show(Some(e)), show(Some(f)))),
    };
    for (sub, x, y) in children {
        match (x, y) {
            (Some(x), Some(y)) => {
                if let Some(d) = json_path_difference(x, y, sub) {
                    return Some(d);
                }
            }
            (x, y) => return Some((sub, show(x), show(y))),
        }
    }
    None
}

/// Names the first CSV column of a line that differs.
fn csv_difference(header: &str, expected: &str, found: &str, at: &str) -> String {
    let fields = |s: &str| -> Vec<String> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(s.as_bytes());
        (r.records().next())
            .and_then(Result::ok)
            .map(|rec| rec.iter().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (h, e, f) = (fields(header), fields(expected), fields(found));
    match (0..e.len().max(f.len())).find(|&i| e.get(i) != f.get(i)) {
        Some(i) => format!(
            "{at}, column {} is {:?}, re-derived {:?}",
            h.get(i).map_or("?", String::as_str),
            f.get(i).map_or("", String::as_str),
            e.get(i).map_or("", String::as_str)
        ),
        None => format!("{at} differs"),
    }
}
