//! Topic configs: the names StreamHouse knows, their defaults and types, and topic-name rules.
//! Used by CreateTopics (validation, the configs echoed back) and DescribeConfigs.

use kafka_protocol::error::ResponseError;

use crate::context::AgentContext;
use crate::error::BrokerError;

/// Config source codes of DescribeConfigs (KIP-226).
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DEFAULT: i8 = 5;

/// Config type codes of DescribeConfigs v3+ (KIP-569).
pub const TYPE_STRING: i8 = 2;
pub const TYPE_INT: i8 = 3;
pub const TYPE_LONG: i8 = 5;

/// (name, default value, type) of each topic config a client may set or read.
pub const TOPIC_DEFAULTS: &[(&str, &str, i8)] = &[
    ("cleanup.policy", "delete", TYPE_STRING),
    ("compression.type", "producer", TYPE_STRING),
    ("max.message.bytes", "1048588", TYPE_INT),
    ("message.timestamp.type", "CreateTime", TYPE_STRING),
    ("min.insync.replicas", "1", TYPE_INT),
    ("retention.bytes", "-1", TYPE_LONG),
    ("retention.ms", "604800000", TYPE_LONG),
    ("segment.bytes", "1073741824", TYPE_INT),
    ("segment.ms", "604800000", TYPE_LONG),
    (AGENT_GROUP_CONFIG, DEFAULT_AGENT_GROUP, TYPE_STRING),
];

/// The topic config that pins a topic to an agent group.
pub const AGENT_GROUP_CONFIG: &str = "streamhouse.agent.group";
pub const DEFAULT_AGENT_GROUP: &str = "default";

/// The agent group that leads `topic`.
pub fn agent_group_of(topic: &streamhouse_metadata::Topic) -> &str {
    topic.configs.get(AGENT_GROUP_CONFIG).map_or(DEFAULT_AGENT_GROUP, String::as_str)
}

/// The topic's max.message.bytes: the largest batch a producer may send it.
pub fn max_message_bytes(topic: &streamhouse_metadata::Topic) -> usize {
    topic
        .configs
        .get("max.message.bytes")
        .map(String::as_str)
        .or_else(|| default_of("max.message.bytes").map(|(v, _)| v))
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

pub fn default_of(name: &str) -> Option<(&'static str, i8)> {
    TOPIC_DEFAULTS.iter().find(|(n, _, _)| *n == name).map(|(_, v, t)| (*v, *t))
}

/// Checks a config a client wants to set: known name, value of the right type.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let Some((_, kind)) = default_of(name) else {
        return Err(format!("unknown topic config '{name}'"));
    };
    let ok = match kind {
        TYPE_INT => value.parse::<i32>().is_ok(),
        TYPE_LONG => value.parse::<i64>().is_ok(),
        _ => !value.is_empty(),
    };
    if ok { Ok(()) } else { Err(format!("invalid value '{value}' for topic config '{name}'")) }
}

/// Whether a topic may have `total` partitions, `adding` of them new: within
/// --max-partitions-per-topic (INVALID_PARTITIONS) and, counting every topic's, within
/// --max-partitions (POLICY_VIOLATION).
pub async fn check_partition_limits(ctx: &AgentContext, total: i32, adding: i32) -> Result<(), (ResponseError, String)> {
    let per_topic = ctx.config.max_partitions_per_topic;
    if total > per_topic {
        return Err((
            ResponseError::InvalidPartitions,
            format!("{total} partitions: a topic may have at most {per_topic} (--max-partitions-per-topic)"),
        ));
    }
    let topics = ctx.metadata.topics().await.map_err(|e| {
        let e = BrokerError::from(e);
        (e.response_error(), e.to_string())
    })?;
    let existing: i64 = topics.iter().map(|t| i64::from(t.partitions)).sum();
    let cap = ctx.config.max_partitions;
    if existing + i64::from(adding) > cap {
        return Err((
            ResponseError::PolicyViolation,
            format!("the cluster has {existing} partitions; {adding} more would pass the limit of {cap} (--max-partitions)"),
        ));
    }
    Ok(())
}

/// Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], and not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), ResponseError> {
    let legal = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if legal { Ok(()) } else { Err(ResponseError::InvalidTopicException) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_values() {
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("no.such.config", "1").is_err());
    }
}
