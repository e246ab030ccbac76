//! Generation options: each family's own typed value ([`crate::Family::Options`]) and the set of
//! them one run uses ([`OptionSet`]).
//!
//! A family declares its options as a plain serde struct with defaults; triad never names one.
//! The set is built from every family in [`crate::registry`], changed one `key=value` at a time
//! (from the CLI's per-option flags or `--option family.key=value`), validated by the family on
//! every change, stored whole in the manifest and hashed whole into every stream's
//! configuration hash — so an option added to a family can never be left out of a resume check.
//!
//! Option keys are unique across families (a registry test holds it): a bare `key=value` names one
//! family's option, and the configuration hash can list every option under its own key.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::registry;

/// One option of a family, as `--help` and the dataset card describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionDoc {
    /// The key, as the family's options struct serializes it (`unsat_ratio`).
    pub key: &'static str,
    /// What it does, one sentence, with its accepted values.
    pub help: &'static str,
}

/// The options of a family without any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// An option could not be set or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    /// Not `key=value` or `family.key=value`.
    #[error("option {0:?} is not KEY=VALUE (or FAMILY.KEY=VALUE)")]
    Syntax(String),
    /// No family of this build has that name.
    #[error("no family {family:?} (this build has {known})")]
    UnknownFamily {
        /// The name given.
        family: String,
        /// The families there are.
        known: String,
    },
    /// No family has an option of that key (or the named family has none of it).
    #[error("no option {key:?}{} (options: {known})", family.as_ref().map(|f| format!(" for {f}")).unwrap_or_default())]
    UnknownKey {
        /// The family named, if one was.
        family: Option<String>,
        /// The key given.
        key: String,
        /// The keys there are.
        known: String,
    },
    /// The family refused the value.
    #[error("{family} options: {message}")]
    Invalid {
        /// The family.
        family: &'static str,
        /// Why, naming the key.
        message: String,
    },
}

/// One family's options, validated by the family: its typed value, and the JSON object it
/// serializes to (what manifests store and hashes cover).
#[derive(Clone)]
pub struct FamilyOptions {
    family: &'static str,
    json: Map<String, Value>,
    typed: Arc<dyn Any + Send + Sync>,
}

impl FamilyOptions {
    /// Wrap a value the family has validated.
    pub(crate) fn new<T: Serialize + Any + Send + Sync>(
        family: &'static str,
        typed: T,
    ) -> Result<FamilyOptions, String> {
        let json = match serde_json::to_value(&typed) {
            Ok(Value::Object(map)) => map,
            Ok(other) => return Err(format!("options serialize as {other}, not an object")),
            Err(e) => return Err(e.to_string()),
        };
        Ok(FamilyOptions {
            family,
            json,
            typed: Arc::new(typed),
        })
    }

    /// The family these options belong to.
    pub fn family(&self) -> &'static str {
        self.family
    }

    /// The options as a JSON object, every key present.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// The typed value, if it is a `T`.
    pub fn typed<T: Any>(&self) -> Option<&T> {
        self.typed.downcast_ref()
    }
}

impl fmt::Debug for FamilyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.family, Value::Object(self.json.clone()))
    }
}

impl PartialEq for FamilyOptions {
    fn eq(&self, other: &Self) -> bool {
        self.family == other.family && self.json == other.json
    }
}

/// The options of every family in the registry, in registry order: what one run generates with.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionSet(Vec<FamilyOptions>);

impl Default for OptionSet {
    /// Every family's defaults.
    fn default() -> Self {
        OptionSet(
            registry::FAMILIES
                .iter()
                .map(|f| f.default_options())
                .collect(),
        )
    }
}

/// Read a value as given on a command line: JSON where it is JSON (`0.3`, `true`, `"x"`),
/// otherwise the text as a string (`explanation`).
pub fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

impl OptionSet {
    /// The options of `family`.
    pub fn of(&self, family: &str) -> Option<&FamilyOptions> {
        self.0.iter().find(|o| o.family == family)
    }

    /// Every family's options, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = &FamilyOptions> {
        self.0.iter()
    }

    /// Every option of every family as `(key, value)`, in registry order then key order: what the
    /// configuration hash lists (keys are unique across families).
    pub fn flat(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0
            .iter()
            .flat_map(|o| o.json.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// Set one option from `key=value` or `family.key=value` (value read by [`parse_value`]).
    pub fn set(&mut self, assignment: &str) -> Result<(), OptionsError> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| OptionsError::Syntax(assignment.to_string()))?;
        let (family, key) = match name.split_once('.') {
            Some((family, key)) => (Some(family.trim()), key.trim()),
            None => (None, name.trim()),
        };
        if key.is_empty() {
            return Err(OptionsError::Syntax(assignment.to_string()));
        }
        self.set_json(family, key, parse_value(value.trim()))
    }

    /// Set one option to a JSON value: `key` of `family`, or of the one family that has `key`.
    pub fn set_json(
        &mut self,
        family: Option<&str>,
        key: &str,
        value: Value,
    ) -> Result<(), OptionsError> {
        let family = match family {
            Some(family) => self.index_of_family(family)?,
            None => self.index_of_key(key)?,
        };
        self.set_value(family, key, value)
    }

    /// Whether some family has an option `key`.
    pub fn has_key(&self, key: &str) -> bool {
        self.0.iter().any(|o| o.json.contains_key(key))
    }

    /// Set `key` of the family at `index` to `value`, validated by the family.
    fn set_value(&mut self, index: usize, key: &str, value: Value) -> Result<(), OptionsError> {
        let current = &self.0[index];
        if !current.json.contains_key(key) {
            return Err(OptionsError::UnknownKey {
                family: Some(current.family.to_string()),
                key: key.to_string(),
                known: keys_of(std::slice::from_ref(current)),
            });
        }
        let mut json = current.json.clone();
        json.insert(key.to_string(), value);
        self.0[index] = read_family(current.family, &Value::Object(json))?;
        Ok(())
    }

    fn index_of_family(&self, family: &str) -> Result<usize, OptionsError> {
        self.0
            .iter()
            .position(|o| o.family == family)
            .ok_or_else(|| OptionsError::UnknownFamily {
                family: family.to_string(),
                known: registry::names().join(", "),
            })
    }

    fn index_of_key(&self, key: &str) -> Result<usize, OptionsError> {
        self.0
            .iter()
            .position(|o| o.json.contains_key(key))
            .ok_or_else(|| OptionsError::UnknownKey {
                family: None,
                key: key.to_string(),
                known: keys_of(&self.0),
            })
    }

    /// The set as one JSON object, `{family: {key: value}}`, every family present.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|o| (o.family.to_string(), Value::Object(o.json.clone())))
                .collect(),
        )
    }

    /// Read a set written by [`OptionSet::to_json`]: each family validates its part; a family
    /// missing from the object gets its defaults, and so does a key missing from a family's part
    /// where the family's struct allows (`#[serde(default)]`).
    pub fn from_json(json: &Value) -> Result<OptionSet, OptionsError> {
        let Value::Object(map) = json else {
            return Err(OptionsError::Syntax(format!("{json} is not an object")));
        };
        let mut set = OptionSet::default();
        for (family, part) in map {
            let index = set.index_of_family(family)?;
            set.0[index] = read_family(set.0[index].family, part)?;
        }
        Ok(set)
    }
}

fn read_family(family: &'static str, json: &Value) -> Result<FamilyOptions, OptionsError> {
    let dyn_family = registry::family(family).ok_or_else(|| OptionsError::UnknownFamily {
        family: family.to_string(),
        known: registry::names().join(", "),
    })?;
    dyn_family
        .options_from_json(json)
        .map_err(|message| OptionsError::Invalid { family, message })
}

fn keys_of(options: &[FamilyOptions]) -> String {
    let keys: Vec<String> = options
        .iter()
        .flat_map(|o| o.json.keys().map(move |k| format!("{}.{k}", o.family)))
        .collect();
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

impl Serialize for OptionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OptionSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Value::deserialize(deserializer)?;
        OptionSet::from_json(&json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_key_finds_its_family_and_a_qualified_one_must_match() {
        let mut set = OptionSet::default();
        set.set("unsat_ratio=0.25").unwrap();
        set.set("abduction.abduction_mode=explanation").unwrap();
        assert_eq!(set.of("deduction").unwrap().json()["unsat_ratio"], 0.25);
        assert_eq!(
            set.of("abduction").unwrap().json()["abduction_mode"],
            "explanation"
        );
        assert!(matches!(
            set.set("induction.unsat_ratio=0.1"),
            Err(OptionsError::UnknownKey { .. })
        ));
        assert!(matches!(
            set.set("nosuch=1"),
            Err(OptionsError::UnknownKey { family: None, .. })
        ));
        assert!(matches!(
            set.set("nosuch.key=1"),
            Err(OptionsError::UnknownFamily { .. })
        ));
        assert!(matches!(
            set.set("unsat_ratio"),
            Err(OptionsError::Syntax(_))
        ));
        assert!(matches!(set.set("=1"), Err(OptionsError::Syntax(_))));
    }

    #[test]
    fn families_refuse_values_out_of_range_or_of_the_wrong_type() {
        let mut set = OptionSet::default();
        for bad in [
            "unsat_ratio=1.5",
            "unsat_ratio=-0.1",
            "unsat_ratio=many",
            "abduction_mode=sideways",
            "abduction_mode=3",
        ] {
            let before = set.clone();
            assert!(
                matches!(set.set(bad), Err(OptionsError::Invalid { .. })),
                "{bad}"
            );
            assert_eq!(set, before, "a refused value changes nothing ({bad})");
        }
    }

    #[test]
    fn the_set_round_trips_through_json_and_normalises_numbers() {
        let mut set = OptionSet::default();
        set.set("unsat_ratio=1").unwrap();
        set.set("abduction_mode=mixed").unwrap();
        let json = set.to_json();
        assert_eq!(json["deduction"]["unsat_ratio"].to_string(), "1.0");
        assert_eq!(OptionSet::from_json(&json).unwrap(), set);
        // A family left out gets its defaults; an unknown one is refused.
        let partial = serde_json::json!({"deduction": {"unsat_ratio": 0.5}});
        let read = OptionSet::from_json(&partial).unwrap();
        assert_eq!(read.of("abduction"), OptionSet::default().of("abduction"));
        assert!(OptionSet::from_json(&serde_json::json!({"nosuch": {}})).is_err());
        assert!(
            OptionSet::from_json(&serde_json::json!({"induction": {"extra": 1}})).is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn command_line_values_are_json_where_they_parse() {
        assert_eq!(parse_value("0.5"), serde_json::json!(0.5));
        assert_eq!(parse_value("true"), serde_json::json!(true));
        assert_eq!(parse_value("explanation"), serde_json::json!("explanation"));
        assert_eq!(parse_value("\"3\""), serde_json::json!("3"));
    }
}
