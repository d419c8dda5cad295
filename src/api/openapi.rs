//! What the OpenAPI document says beyond the handlers' derives: the syntax of
//! time parameters and fields, and the third-party webhook bodies (as far as
//! slaflow reads them: the fields it requires are required here, no more).

use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{OpenApi, RefOr};

/// The syntax of a time: epoch milliseconds, a date or an RFC 3339 instant.
/// The value must also lie in years 0000-9999, which no pattern says.
pub const TIME_PATTERN: &str = r"^(-?[0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?)$";

/// The query parameters that are times.
const TIME_PARAMETERS: [&str; 2] = ["from", "to"];

/// A time in a JSON body: a string as [`TIME_PATTERN`], or integer epoch ms
/// in years 0000-9999.
pub fn time_value() -> Schema {
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(TIME_PATTERN));
    let ms = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(-62_167_219_200_000_i64))
        .maximum(Some(253_402_300_799_999_i64));
    Schema::OneOf(OneOfBuilder::new().item(text).item(ms).build())
}

/// The fields of Alertmanager's webhook body (version 4, its
/// `webhook_config` docs) slaflow reads; the others are ignored.
fn alertmanager() -> Value {
    let labels = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    json!({
        "type": "object",
        "required": ["version", "alerts"],
        "properties": {
            "version": { "type": "string", "enum": ["4"] },
            "alerts": { "type": "array", "items": {
                "type": "object",
                "required": ["status", "labels", "startsAt", "fingerprint"],
                "properties": {
                    "status": { "type": "string", "enum": ["firing", "resolved"] },
                    "labels": labels,
                    "startsAt": { "type": "string", "format": "date-time" },
                    "endsAt": { "type": "string", "format": "date-time" },
                    "fingerprint": { "type": "string", "minLength": 1 },
                },
            }},
        },
    })
}

/// The fields of a Jira webhook slaflow reads.
fn jira() -> Value {
    json!({
        "type": "object",
        "required": ["webhookEvent", "timestamp", "issue"],
        "properties": {
            "webhookEvent": { "type": "string", "minLength": 1 },
            "timestamp": { "type": "integer" },
            "issue": {
                "type": "object",
                "required": ["id", "key"],
                "properties": {
                    "id": { "type": "string", "minLength": 1 },
                    "key": { "type": "string", "minLength": 1 },
                },
            },
        },
    })
}

/// The document with the time parameters' syntax and the webhook bodies.
pub fn exact(mut api: OpenApi) -> Result<OpenApi, serde_json::Error> {
    let bodies = [
        ("/v1/ingest/alertmanager", alertmanager()),
        ("/v1/ingest/jira", jira()),
        (
            "/v1/ingest/events",
            json!({ "type": "string", "minLength": 1 }),
        ),
    ];
    for (path, schema) in bodies {
        let schema: Schema = serde_json::from_value(schema)?;
        if let Some(body) = operation(&mut api, path).and_then(|o| o.request_body.as_mut()) {
            set_body_schema(body, schema);
        }
    }
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            time_parameters(op);
        }
    }
    Ok(api)
}

fn operation<'a>(api: &'a mut OpenApi, path: &str) -> Option<&'a mut Operation> {
    let item = api.paths.paths.get_mut(path)?;
    item.post.as_mut().or(item.get.as_mut())
}

fn set_body_schema(body: &mut RequestBody, schema: Schema) {
    for content in body.content.values_mut() {
        content.schema = Some(RefOr::T(schema.clone()));
    }
}

fn time_parameters(op: &mut Operation) {
    let params = op.parameters.iter_mut().flatten();
    for p in params.filter(|p| p.parameter_in == ParameterIn::Query) {
        if !TIME_PARAMETERS.contains(&p.name.as_str()) {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(Object { pattern, .. }))) = &mut p.schema {
            *pattern = Some(TIME_PATTERN.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_schemas_parse_and_the_time_pattern_matches_what_parses() {
        assert!(matches!(time_value(), Schema::OneOf(_)));
        let doc = serde_json::to_value(time_value()).expect("serialises");
        assert_eq!(doc["oneOf"][0]["pattern"], TIME_PATTERN);
        assert_eq!(doc["oneOf"][1]["maximum"], 253_402_300_799_999_i64);
        for body in [alertmanager(), jira()] {
            assert!(serde_json::from_value::<Schema>(body).is_ok());
        }
        let pattern = regex::Regex::new(TIME_PATTERN).expect("a regex");
        for t in [
            "0",
            "-5",
            "1793613600000",
            "2026-11-02",
            "2026-11-02T10:00:00Z",
            "2026-11-02T10:00:00.5+01:00",
        ] {
            assert!(pattern.is_match(t), "{t}");
            assert!(crate::time::parse_flexible(t).is_ok(), "{t}");
        }
        for t in [
            "",
            "yesterday",
            "2026-11-02 10:00",
            "1e3",
            "2026-11-02T10:00Z",
        ] {
            assert!(!pattern.is_match(t), "{t}");
            assert!(crate::time::parse_flexible(t).is_err(), "{t}");
        }
    }
}
