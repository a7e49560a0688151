//! Every Redis key and SCAN pattern the adapters use is built here and nowhere else.
//! Layouts are those of `@motiadev/adapter-redis-*@0.17` (wire compatibility).

/// Default prefix of `RedisStateAdapter` keys.
pub const DEFAULT_STATE_PREFIX: &str = "motia:state:";

/// Escapes Redis glob metacharacters (`* ? [ ] \`) so a literal id can never match other keys.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Key naming of the state adapter: STRING keys `${prefix}${traceId}:${key}`.
#[derive(Debug, Clone)]
pub struct StateKeys {
    prefix: String,
}

impl StateKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        StateKeys { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn key(&self, trace_id: &str, key: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + trace_id.len() + key.len() + 1);
        s.push_str(&self.prefix);
        s.push_str(trace_id);
        s.push(':');
        s.push_str(key);
        s
    }

    /// SCAN pattern matching exactly the keys of one trace (glob characters escaped).
    pub fn group_pattern(&self, trace_id: &str) -> String {
        format!("{}{}:*", glob_escape(&self.prefix), glob_escape(trace_id))
    }

    /// SCAN pattern matching every state key under the prefix.
    pub fn all_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.prefix))
    }

    /// The part of `full` after `${prefix}${traceId}:`.
    pub fn strip_group<'a>(&self, trace_id: &str, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.prefix.as_str())?
            .strip_prefix(trace_id)?
            .strip_prefix(':')
    }

    /// Splits a full key into (traceId, key) at the first `:` after the prefix, as 0.17 does.
    pub fn split<'a>(&self, full: &'a str) -> Option<(&'a str, &'a str)> {
        full.strip_prefix(self.prefix.as_str())?.split_once(':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_layout_matches_0_17() {
        let k = StateKeys::new(DEFAULT_STATE_PREFIX);
        assert_eq!(k.key("trace-123", "userData"), "motia:state:trace-123:userData");
        assert_eq!(k.group_pattern("trace-123"), "motia:state:trace-123:*");
        assert_eq!(k.all_pattern(), "motia:state:*");
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?c[d]e\\f"), "a\\*b\\?c\\[d\\]e\\\\f");
        let k = StateKeys::new("p:");
        assert_eq!(k.group_pattern("*"), "p:\\*:*");
        assert_eq!(k.group_pattern("a[b]"), "p:a\\[b\\]:*");
    }

    #[test]
    fn strip_and_split() {
        let k = StateKeys::new("motia:state:");
        assert_eq!(k.strip_group("t1", "motia:state:t1:x:y"), Some("x:y"));
        assert_eq!(k.strip_group("t1", "motia:state:t10:x"), None);
        assert_eq!(k.split("motia:state:t1:x:y"), Some(("t1", "x:y")));
        assert_eq!(k.split("other:t1:x"), None);
    }
}

/// Default prefix of `RedisCronAdapter` lock keys.
pub const DEFAULT_CRON_PREFIX: &str = "motia:cron:lock:";
/// Fencing counters live outside the lock prefix so upstream's `SCAN ${keyPrefix}*` never sees them.
pub const CRON_FENCE_NAMESPACE: &str = "motia:cron:fence:";

/// Key naming of the cron locks: STRING `${prefix}${jobName}` holding the lock JSON (0.17 layout),
/// plus a fencing counter `motia:cron:fence:${prefix}${jobName}` (on a Redis Cluster
/// `motia:cron:fence:{tag}${prefix}${jobName}`, the tag putting it in the lock key's slot so the
/// acquire script touches one slot while the lock key keeps the 0.17 name).
#[derive(Debug, Clone)]
pub struct CronKeys {
    prefix: String,
    clustered: bool,
}

impl CronKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        CronKeys {
            prefix: prefix.into(),
            clustered: false,
        }
    }

    /// The layout on a Redis Cluster (fence keys tagged into their lock key's slot).
    pub fn clustered(mut self, on: bool) -> Self {
        self.clustered = on;
        self
    }

    pub fn lock(&self, job: &str) -> String {
        format!("{}{}", self.prefix, job)
    }

    pub fn fence(&self, job: &str) -> String {
        if self.clustered {
            let lock = self.lock(job);
            format!(
                "{}{{{}}}{}",
                CRON_FENCE_NAMESPACE,
                super::cluster::colocated_tag(&lock),
                lock
            )
        } else {
            format!("{}{}{}", CRON_FENCE_NAMESPACE, self.prefix, job)
        }
    }

    pub fn all_pattern(&self) -> String {
        format!("{}*", glob_escape(&self.prefix))
    }

    pub fn job_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.prefix.as_str())
    }
}

#[cfg(test)]
mod cron_tests {
    use super::*;

    #[test]
    fn cron_layout_matches_0_17() {
        let k = CronKeys::new(DEFAULT_CRON_PREFIX);
        assert_eq!(k.lock("daily-report"), "motia:cron:lock:daily-report");
        assert_eq!(k.fence("daily-report"), "motia:cron:fence:motia:cron:lock:daily-report");
        assert!(!k.fence("x").starts_with(DEFAULT_CRON_PREFIX));
        let c = CronKeys::new(DEFAULT_CRON_PREFIX).clustered(true);
        assert_eq!(
            c.fence("daily"),
            "motia:cron:fence:{motia:cron:lock:daily}motia:cron:lock:daily"
        );
        for job in ["a}b", "{x}", "{}", "a{b"] {
            use redis::cluster_routing::Slot;
            assert_eq!(Slot::for_key(c.fence(job)), Slot::for_key(c.lock(job)), "{job}");
        }
        assert_eq!(k.all_pattern(), "motia:cron:lock:*");
        assert_eq!(k.job_of("motia:cron:lock:a:b"), Some("a:b"));
    }
}

/// Default prefix of stream hashes.
pub const DEFAULT_STREAM_PREFIX: &str = "motia:stream:";
/// Pub/sub channels are hard-coded in 0.17 (the key prefix does not apply to them).
pub const STREAM_EVENTS_NAMESPACE: &str = "motia:stream:events:";

/// Key naming of streams: one HASH per (stream, group) `${prefix}${stream}:group:${groupId}`
/// (field = item id), channels `motia:stream:events:${stream}:${groupId}[:${id}]`.
#[derive(Debug, Clone)]
pub struct StreamKeys {
    prefix: String,
}

impl StreamKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        StreamKeys { prefix: prefix.into() }
    }

    pub fn group(&self, stream: &str, group: &str) -> String {
        format!("{}{}:group:{}", self.prefix, stream, group)
    }

    pub fn group_channel(stream: &str, group: &str) -> String {
        format!("{STREAM_EVENTS_NAMESPACE}{stream}:{group}")
    }

    pub fn item_channel(stream: &str, group: &str, id: &str) -> String {
        format!("{STREAM_EVENTS_NAMESPACE}{stream}:{group}:{id}")
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn stream_layout_matches_0_17() {
        let k = StreamKeys::new(DEFAULT_STREAM_PREFIX);
        assert_eq!(k.group("todos", "inbox"), "motia:stream:todos:group:inbox");
        assert_eq!(
            StreamKeys::group_channel("todos", "inbox"),
            "motia:stream:events:todos:inbox"
        );
        assert_eq!(
            StreamKeys::item_channel("todos", "inbox", "t1"),
            "motia:stream:events:todos:inbox:t1"
        );
    }
}

/// Default prefix of the Redis event adapter's keys.
pub const DEFAULT_EVENTS_PREFIX: &str = "motia:events:";

/// Key naming of Redis events (no 0.17 layout exists; ours): for topic `t` and step (or RFC queue) `s`, with
/// `%`, `:`, `{`, `}` percent-encoded in both so no name can reach another topic's keys or a hash tag:
/// - SET `${prefix}${t}:steps`: the steps subscribed to `t` across the fleet (durable, like RabbitMQ's queues);
/// - ZSET `${prefix}${t}:fanout`: RFC fan-out subscribers, scored by the ms their registration expires;
/// - STREAM `${prefix}${t}:q:${s}` with consumer group [`EVENTS_GROUP`]: the step's events;
/// - STREAM `${prefix}${t}:dlq:${s}`: its dead letters; STRING `${prefix}${t}:owner:${s}`: the fifo consumer's lease.
#[derive(Debug, Clone)]
pub struct EventKeys {
    prefix: String,
    /// On a Redis Cluster every key of a topic carries the topic as its hash tag
    /// (`<prefix>{<topic>}:steps`), so the emit script and the dead-letter transaction touch one slot.
    clustered: bool,
}

/// The consumer group on every event stream (one stream per step, so one group each).
pub const EVENTS_GROUP: &str = "motia";

impl EventKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        EventKeys {
            prefix: prefix.into(),
            clustered: false,
        }
    }

    /// The layout for a Redis Cluster (`true`): the topic is the keys' hash tag.
    pub fn clustered(mut self, clustered: bool) -> Self {
        self.clustered = clustered;
        self
    }

    /// A topic or step name as it appears inside a key.
    pub fn encode(name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for c in name.chars() {
            match c {
                '%' => out.push_str("%25"),
                ':' => out.push_str("%3A"),
                '{' => out.push_str("%7B"),
                '}' => out.push_str("%7D"),
                c => out.push(c),
            }
        }
        out
    }

    /// The inverse of [`EventKeys::encode`].
    pub fn decode(name: &str) -> String {
        name.replace("%3A", ":")
            .replace("%7B", "{")
            .replace("%7D", "}")
            .replace("%25", "%")
    }

    /// SCAN patterns matching every topic's registries (steps, fan-out) under this prefix.
    pub fn registry_patterns(&self) -> [String; 2] {
        let p = glob_escape(&self.prefix);
        [format!("{p}*:steps"), format!("{p}*:fanout")]
    }

    /// The topic a registry key (see [`EventKeys::registry_patterns`]) belongs to; `None` for other keys.
    pub fn topic_of(&self, key: &str) -> Option<String> {
        let rest = key.strip_prefix(self.prefix.as_str())?;
        let encoded = rest.strip_suffix(":steps").or_else(|| rest.strip_suffix(":fanout"))?;
        let encoded = if self.clustered {
            encoded.strip_prefix('{')?.strip_suffix('}')?
        } else {
            encoded
        };
        (!encoded.is_empty() && !encoded.contains([':', '{', '}'])).then(|| Self::decode(encoded))
    }

    fn topic(&self, topic: &str, suffix: &str) -> String {
        if self.clustered {
            format!("{}{{{}}}:{}", self.prefix, Self::encode(topic), suffix)
        } else {
            format!("{}{}:{}", self.prefix, Self::encode(topic), suffix)
        }
    }

    pub fn steps(&self, topic: &str) -> String {
        self.topic(topic, "steps")
    }

    pub fn fanout(&self, topic: &str) -> String {
        self.topic(topic, "fanout")
    }

    /// What the emit script prepends to a registry member (an encoded name) to get its stream.
    pub fn stream_base(&self, topic: &str) -> String {
        self.topic(topic, "q:")
    }

    pub fn stream(&self, topic: &str, member: &str) -> String {
        format!("{}{}", self.stream_base(topic), member)
    }

    pub fn dlq(&self, topic: &str, member: &str) -> String {
        format!("{}{}", self.topic(topic, "dlq:"), member)
    }

    pub fn owner(&self, topic: &str, member: &str) -> String {
        format!("{}{}", self.topic(topic, "owner:"), member)
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;

    #[test]
    fn event_layout_and_hostile_names() {
        let k = EventKeys::new(DEFAULT_EVENTS_PREFIX);
        let step = EventKeys::encode("send-email");
        assert_eq!(k.steps("order.created"), "motia:events:order.created:steps");
        assert_eq!(
            k.stream("order.created", &step),
            "motia:events:order.created:q:send-email"
        );
        assert_eq!(
            k.dlq("order.created", &step),
            "motia:events:order.created:dlq:send-email"
        );
        // topic "a:q:b" + step "c" must not be topic "a" + step "b:c" (or anything of topic "a")
        let hostile = k.stream("a:q:b", &EventKeys::encode("c"));
        assert_eq!(hostile, "motia:events:a%3Aq%3Ab:q:c");
        assert_ne!(hostile, k.stream("a", &EventKeys::encode("b:c")));
        assert_eq!(EventKeys::encode("{x}%"), "%7Bx%7D%25");
        for t in ["order.created", "a:q:b", "{x}%3A%", "x:steps"] {
            assert_eq!(k.topic_of(&k.steps(t)).as_deref(), Some(t));
            assert_eq!(k.topic_of(&k.fanout(t)).as_deref(), Some(t));
            assert_eq!(k.topic_of(&k.stream(t, "s")), None);
        }
        // another prefix nested under ours, and foreign keys, are not our topics
        assert_eq!(k.topic_of("motia:events:other:t:steps"), None);
        assert_eq!(k.topic_of("motia:state:t:steps"), None);
        assert_eq!(EventKeys::new("a*[b]:").registry_patterns()[0], "a\\*\\[b\\]:*:steps");
    }

    #[test]
    fn on_a_cluster_a_topic_is_its_keys_hash_tag() {
        use redis::cluster_routing::Slot;
        let k = EventKeys::new(DEFAULT_EVENTS_PREFIX).clustered(true);
        let step = EventKeys::encode("send-email");
        assert_eq!(k.steps("order.created"), "motia:events:{order.created}:steps");
        assert_eq!(
            k.stream("order.created", &step),
            "motia:events:{order.created}:q:send-email"
        );
        for t in ["order.created", "a:q:b", "{x}%3A%", "x:steps", "}"] {
            let slot = Slot::for_key(k.steps(t));
            for key in [k.fanout(t), k.stream(t, &step), k.dlq(t, &step), k.owner(t, &step)] {
                assert_eq!(Slot::for_key(&key), slot, "{key}");
            }
            assert_eq!(k.topic_of(&k.steps(t)).as_deref(), Some(t));
            assert_eq!(k.topic_of(&k.fanout(t)).as_deref(), Some(t));
            assert_eq!(k.topic_of(&k.stream(t, "s")), None);
        }
        // the standalone layout is not a topic of the cluster one, nor the other way round
        assert_eq!(k.topic_of("motia:events:t:steps"), None);
        assert_eq!(
            EventKeys::new(DEFAULT_EVENTS_PREFIX).topic_of("motia:events:{t}:steps"),
            None
        );
    }
}
