//! The Parquet row schema: verl's columns, OpenRLHF's `label`, triad's provenance, and one
//! structured column per family.
//!
//! Every shard of every family has the same schema (a family's column is null on other families'
//! rows), so any set of shards concatenates in pandas, HF `datasets`, verl or OpenRLHF without a
//! schema-merge step. `schemas/row.schema.json` is [`describe`] of [`row_schema`], held to it by a
//! test.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Value, json};
use triad_generators::fields::{FieldKind, FieldSpec};
use triad_generators::registry;

/// Documentation of the fixed columns, in order.
pub const FIXED_COLUMNS: &[(&str, &str)] = &[
    (
        "data_source",
        "`triad/<family>`: verl's reward dispatch key",
    ),
    (
        "prompt",
        "chat messages [{role, content}]; the paper style is one user message holding the pre-rendered Qwen string",
    ),
    ("ability", "the family name"),
    (
        "reward_model",
        "{style: \"rule\", ground_truth: <label JSON>} as verl expects",
    ),
    (
        "extra_info",
        "{split, index, family, level, id, candidate}: provenance; `candidate` is the item's index in its seeded stream",
    ),
    (
        "label",
        "the self-contained label JSON (same as reward_model.ground_truth), for OpenRLHF --data.label_key label",
    ),
    (
        "id",
        "content hash (32 hex digits): equal ids are the same task",
    ),
    ("family", "deduction | induction | abduction"),
    ("level", "1–5 paper-compatible, 6–10 extended"),
    (
        "answer",
        "the reference answer text (what goes inside <answer>…</answer>); an SFT target",
    ),
];

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

/// The struct type of a chat message.
pub fn message_fields() -> Fields {
    Fields::from(vec![utf8("role"), utf8("content")])
}

/// The `reward_model` struct fields.
pub fn reward_model_fields() -> Fields {
    Fields::from(vec![utf8("style"), utf8("ground_truth")])
}

/// The `extra_info` struct fields.
pub fn extra_info_fields() -> Fields {
    Fields::from(vec![
        utf8("split"),
        int64("index"),
        utf8("family"),
        int64("level"),
        utf8("id"),
        int64("candidate"),
    ])
}

/// The list field of a list column.
pub fn list_item(data_type: DataType, nullable: bool) -> Arc<Field> {
    Arc::new(Field::new("item", data_type, nullable))
}

fn kind_type(kind: FieldKind) -> DataType {
    match kind {
        FieldKind::Int => DataType::Int64,
        FieldKind::Bool => DataType::Boolean,
        FieldKind::Str => DataType::Utf8,
        FieldKind::IntList => DataType::List(list_item(DataType::Int64, false)),
        FieldKind::BoolList => DataType::List(list_item(DataType::Boolean, false)),
        FieldKind::StrList => DataType::List(list_item(DataType::Utf8, false)),
    }
}

/// The struct fields of a family's column.
pub fn family_fields(specs: &[FieldSpec]) -> Fields {
    specs
        .iter()
        .map(|s| Field::new(s.name, kind_type(s.kind), s.nullable))
        .collect()
}

/// The row schema.
pub fn row_schema() -> SchemaRef {
    let mut fields = vec![
        utf8("data_source"),
        Field::new(
            "prompt",
            DataType::List(list_item(DataType::Struct(message_fields()), false)),
            false,
        ),
        utf8("ability"),
        Field::new(
            "reward_model",
            DataType::Struct(reward_model_fields()),
            false,
        ),
        Field::new("extra_info", DataType::Struct(extra_info_fields()), false),
        utf8("label"),
        utf8("id"),
        utf8("family"),
        int64("level"),
        utf8("answer"),
    ];
    for family in registry::FAMILIES {
        fields.push(Field::new(
            family.name(),
            DataType::Struct(family_fields(family.fields())),
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

/// A compact type name: `string`, `int64`, `list<string>`, `struct<role: string, …>`.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 => "string".into(),
        DataType::Int64 => "int64".into(),
        DataType::Boolean => "bool".into(),
        DataType::List(item) => format!("list<{}>", type_name(item.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), type_name(f.data_type())))
                .collect();
            format!("struct<{}>", inner.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// The JSON description published as `schemas/row.schema.json`.
pub fn describe() -> Value {
    let schema = row_schema();
    let mut columns: Vec<Value> = Vec::new();
    for field in schema.fields() {
        let doc = FIXED_COLUMNS
            .iter()
            .find(|(name, _)| name == field.name())
            .map(|(_, doc)| doc.to_string())
            .unwrap_or_else(|| {
                format!(
                    "the {} instance, null on other families' rows",
                    field.name()
                )
            });
        let mut column = json!({
            "name": field.name(),
            "type": type_name(field.data_type()),
            "nullable": field.is_nullable(),
            "doc": doc,
        });
        if let Some(family) = registry::family(field.name()) {
            let subfields: Vec<Value> = family
                .fields()
                .iter()
                .map(|s| json!({"name": s.name, "type": s.kind.schema_name(), "nullable": s.nullable, "doc": s.doc}))
                .collect();
            column["fields"] = Value::Array(subfields);
        }
        columns.push(column);
    }
    json!({
        "title": "triad dataset row",
        "description": "Arrow/Parquet schema of every shard triad writes (generated by `triad schema row`; a test holds the code to this file).",
        "format_version": crate::dataset::FORMAT_VERSION,
        "columns": columns,
    })
}
