//! slaflow: a stream processor that turns monitoring and ticket events into SLA
//! evidence (availability, response/resolution times, capacity, incidents).
//!
//! Data flow, one module per stage: [`source`] → [`event`] (decode) →
//! [`eventtime`] → [`engine`] → [`sink`]; [`pipeline`] wires the pure stages
//! together for every driver ([`replay`], [`run`]). [`ingest`] turns what
//! monitoring stacks and ticket tools send over HTTP into input events.
#![warn(missing_docs)]

pub mod api;
pub mod bench;
pub mod changelog;
pub mod checkpoint;
pub mod config;
pub mod demo;
pub mod engine;
pub mod event;
pub mod eventtime;
pub mod evidence;
pub mod generate;
pub mod ids;
pub mod ingest;
pub mod kafka;
pub mod metrics;
pub mod model;
pub mod openslo;
pub mod pipeline;
pub mod replay;
pub mod report;
pub mod run;
pub mod sign;
pub mod sink;
pub mod source;
pub mod state;
pub mod text;
pub mod time;
