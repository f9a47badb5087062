//! A small builder for DynamoDB update expressions (SET / REMOVE / ADD / DELETE plus a
//! condition), so that every write of the ledger names its attributes through placeholders
//! (`state`, `status` and others are reserved words) and reads like the state change it is.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Default, Clone)]
pub struct Change {
    sets: Vec<String>,
    removes: Vec<String>,
    adds: Vec<String>,
    conditions: Vec<String>,
    names: HashSet<String>,
    values: HashMap<String, AttributeValue>,
    /// Map keys set by `set_map_key`, named `#map_key<index>` (they may contain dots).
    map_keys: Vec<String>,
}

impl Change {
    pub fn new() -> Change {
        Change::default()
    }

    pub fn set(mut self, attribute: &str, value: AttributeValue) -> Change {
        self.names.insert(attribute.to_string());
        self.sets.push(format!("#{attribute} = :{attribute}"));
        self.values.insert(format!(":{attribute}"), value);
        self
    }

    pub fn remove(mut self, attribute: &str) -> Change {
        self.names.insert(attribute.to_string());
        self.removes.push(format!("#{attribute}"));
        self
    }

    /// Adds to a number or a set attribute.
    pub fn add(mut self, attribute: &str, value: AttributeValue) -> Change {
        self.names.insert(attribute.to_string());
        self.adds.push(format!("#{attribute} :add_{attribute}"));
        self.values.insert(format!(":add_{attribute}"), value);
        self
    }

    /// Sets one key of a map attribute (several keys: one call each).
    pub fn set_map_key(mut self, attribute: &str, key: &str, value: AttributeValue) -> Change {
        self.names.insert(attribute.to_string());
        // The key goes through a name placeholder of its own (it may contain dots).
        let index = self.map_keys.len();
        self.sets
            .push(format!("#{attribute}.#map_key{index} = :map_value{index}"));
        self.values.insert(format!(":map_value{index}"), value);
        self.map_keys.push(key.to_string());
        self
    }

    /// Adds a condition (ANDed with the others). `names` are attributes it uses as `#name`,
    /// `values` its `:placeholders`.
    pub fn when(
        mut self,
        condition: &str,
        names: &[&str],
        values: Vec<(&str, AttributeValue)>,
    ) -> Change {
        self.conditions.push(format!("({condition})"));
        for name in names {
            self.names.insert(name.to_string());
        }
        for (placeholder, value) in values {
            self.values.insert(placeholder.to_string(), value);
        }
        self
    }

    /// Whether the change sets `attribute`.
    pub fn sets(&self, attribute: &str) -> bool {
        self.values.contains_key(&format!(":{attribute}"))
    }

    pub fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        parts.join(" ")
    }

    pub fn condition_expression(&self) -> Option<String> {
        (!self.conditions.is_empty()).then(|| self.conditions.join(" AND "))
    }

    pub fn attribute_names(&self) -> HashMap<String, String> {
        let attributes = self
            .names
            .iter()
            .map(|name| (format!("#{name}"), name.clone()));
        let map_keys = self
            .map_keys
            .iter()
            .enumerate()
            .map(|(index, key)| (format!("#map_key{index}"), key.clone()));
        attributes.chain(map_keys).collect()
    }

    pub fn attribute_values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::dynamodb::item::{n, s};

    #[test]
    fn expressions_name_every_attribute_through_placeholders() {
        let change = Change::new()
            .set("state", s("running"))
            .remove("lease_owner")
            .add("repeats", n(1))
            .when("#version = :v", &["version"], vec![(":v", n(3))]);
        assert_eq!(
            change.update_expression(),
            "SET #state = :state REMOVE #lease_owner ADD #repeats :add_repeats"
        );
        assert_eq!(change.condition_expression().unwrap(), "(#version = :v)");
        let names = change.attribute_names();
        for name in ["#state", "#lease_owner", "#repeats", "#version"] {
            assert!(names.contains_key(name), "{name}");
        }
        assert_eq!(change.attribute_values().unwrap().len(), 3);
    }

    #[test]
    fn map_keys_with_dots_go_through_a_placeholder_each() {
        let change = Change::new()
            .set_map_key("refs", "slack.channel", s("C1"))
            .set_map_key("refs", "slack.ts", s("1.2"));
        assert_eq!(
            change.update_expression(),
            "SET #refs.#map_key0 = :map_value0, #refs.#map_key1 = :map_value1"
        );
        let names = change.attribute_names();
        assert_eq!(names["#map_key0"], "slack.channel");
        assert_eq!(names["#map_key1"], "slack.ts");
        assert_eq!(names["#refs"], "refs");
        let values = change.attribute_values().unwrap();
        assert_eq!(values[":map_value0"], s("C1"));
        assert_eq!(values[":map_value1"], s("1.2"));
    }
}
