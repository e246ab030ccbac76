//! The row layout: [`FIXED_COLUMNS`], the one table of the columns every row has (the schema,
//! the writer and the published schema file all read it), then one struct column per family.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, BooleanBuilder, Int64Array, ListArray, ListBuilder, RecordBatch,
    StringArray, StringBuilder, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field};
use triad_generators::fields::{FieldKind, FieldValue};
use triad_generators::{Item, Split, registry};

use crate::dataset::DatasetError;
use crate::dataset::schema;

/// One row to write: an item and where it sits.
#[derive(Clone, Debug)]
pub struct Row {
    /// The generated item.
    pub item: Item,
    /// Its split.
    pub split: Split,
    /// Its position in the split's stream for its family and level.
    pub index: u64,
    /// The candidate index it was generated from (its seed coordinate).
    pub candidate: u64,
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn prompts(rows: &[Row]) -> ArrayRef {
    let messages = rows.iter().flat_map(|r| &r.item.prompt.messages);
    let roles = strings(messages.clone().map(|m| m.role.as_str()));
    let contents = strings(messages.map(|m| m.content.as_str()));
    let values = StructArray::new(schema::message_fields(), vec![roles, contents], None);
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.item.prompt.messages.len()));
    Arc::new(ListArray::new(
        schema::list_item(DataType::Struct(schema::message_fields()), false),
        offsets,
        Arc::new(values),
        None,
    ))
}

fn reward_models(rows: &[Row]) -> ArrayRef {
    let style = strings(rows.iter().map(|_| "rule"));
    let truth = strings(rows.iter().map(|r| r.item.label.as_str()));
    Arc::new(StructArray::new(
        schema::reward_model_fields(),
        vec![style, truth],
        None,
    ))
}

fn extra_infos(rows: &[Row], ids: &[String]) -> ArrayRef {
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.split.name())),
        int64s(rows.iter().map(|r| r.index as i64)),
        strings(rows.iter().map(|r| r.item.family)),
        int64s(rows.iter().map(|r| i64::from(r.item.level))),
        strings(ids.iter().map(String::as_str)),
        int64s(rows.iter().map(|r| r.candidate as i64)),
    ];
    Arc::new(StructArray::new(schema::extra_info_fields(), columns, None))
}

/// One structured field across rows; rows of other families (`None`) get a placeholder value
/// under the struct's null.
fn field_column(kind: FieldKind, values: &[Option<&FieldValue>]) -> ArrayRef {
    match kind {
        FieldKind::Int => Arc::new(Int64Array::from_iter(values.iter().map(|v| match v {
            Some(FieldValue::Int(i)) => Some(*i),
            Some(FieldValue::Null) => None,
            _ => Some(0),
        }))),
        FieldKind::Bool => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
            Some(FieldValue::Bool(b)) => Some(*b),
            Some(FieldValue::Null) => None,
            _ => Some(false),
        }))),
        FieldKind::Str => Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
            Some(FieldValue::Str(s)) => Some(s.as_str()),
            Some(FieldValue::Null) => None,
            _ => Some(""),
        }))),
        FieldKind::IntList => {
            let mut builder = ListBuilder::new(arrow::array::Int64Builder::new())
                .with_field(schema::list_item(DataType::Int64, false));
            for v in values {
                match v {
                    Some(FieldValue::IntList(list)) => {
                        builder.values().append_slice(list);
                        builder.append(true);
                    }
                    Some(FieldValue::Null) => builder.append(false),
                    _ => builder.append(true),
                }
            }
            Arc::new(builder.finish())
        }
        FieldKind::BoolList => {
            let mut builder = ListBuilder::new(BooleanBuilder::new())
                .with_field(schema::list_item(DataType::Boolean, false));
            for v in values {
                match v {
                    Some(FieldValue::BoolList(list)) => {
                        list.iter().for_each(|b| builder.values().append_value(*b));
                        builder.append(true);
                    }
                    Some(FieldValue::Null) => builder.append(false),
                    _ => builder.append(true),
                }
            }
            Arc::new(builder.finish())
        }
        FieldKind::StrList => {
            let mut builder = ListBuilder::new(StringBuilder::new())
                .with_field(schema::list_item(DataType::Utf8, false));
            for v in values {
                match v {
                    Some(FieldValue::StrList(list)) => {
                        list.iter().for_each(|s| builder.values().append_value(s));
                        builder.append(true);
                    }
                    Some(FieldValue::Null) => builder.append(false),
                    _ => builder.append(true),
                }
            }
            Arc::new(builder.finish())
        }
    }
}

fn family_column(family: &dyn triad_generators::DynFamily, rows: &[Row]) -> ArrayRef {
    let specs = family.fields();
    let mine: Vec<bool> = rows
        .iter()
        .map(|r| r.item.family == family.name())
        .collect();
    let children: Vec<ArrayRef> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let values: Vec<Option<&FieldValue>> = rows
                .iter()
                .zip(&mine)
                .map(|(r, m)| m.then(|| &r.item.fields[i]))
                .collect();
            field_column(spec.kind, &values)
        })
        .collect();
    let nulls = NullBuffer::from(mine);
    Arc::new(StructArray::new(
        schema::family_fields(specs),
        children,
        Some(nulls),
    ))
}

/// The rows of one batch being written, with their ids (computed once, used by two columns).
pub struct Batch<'a> {
    rows: &'a [Row],
    ids: Vec<String>,
}

/// One of the columns every row has, before the families' own: everything about it in one
/// place — the schema, the writer and `schemas/row.schema.json` all read this table.
pub struct FixedColumn {
    /// Column name.
    pub name: &'static str,
    /// What it holds, for the published schema.
    pub doc: &'static str,
    data_type: fn() -> DataType,
    fill: fn(&Batch<'_>) -> ArrayRef,
}

impl FixedColumn {
    /// The column's Arrow field (fixed columns are never null).
    pub fn field(&self) -> Field {
        Field::new(self.name, (self.data_type)(), false)
    }
}

fn int64s(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

/// The fixed columns, in order.
pub static FIXED_COLUMNS: &[FixedColumn] = &[
    FixedColumn {
        name: "data_source",
        doc: "`triad/<family>`: verl's reward dispatch key",
        data_type: || DataType::Utf8,
        fill: |b| {
            let sources: Vec<String> = b
                .rows
                .iter()
                .map(|r| format!("triad/{}", r.item.family))
                .collect();
            strings(sources.iter().map(String::as_str))
        },
    },
    FixedColumn {
        name: "prompt",
        doc: "chat messages [{role, content}]; the paper style is one user message holding the pre-rendered Qwen string, the compact style one user message with the puzzle and a format hint",
        data_type: || {
            DataType::List(schema::list_item(
                DataType::Struct(schema::message_fields()),
                false,
            ))
        },
        fill: |b| prompts(b.rows),
    },
    FixedColumn {
        name: "ability",
        doc: "the family name",
        data_type: || DataType::Utf8,
        fill: |b| strings(b.rows.iter().map(|r| r.item.family)),
    },
    FixedColumn {
        name: "reward_model",
        doc: "{style: \"rule\", ground_truth: <label JSON>} as verl expects",
        data_type: || DataType::Struct(schema::reward_model_fields()),
        fill: |b| reward_models(b.rows),
    },
    FixedColumn {
        name: "extra_info",
        doc: "{split, index, family, level, id, candidate}: provenance; `candidate` is the item's index in its seeded stream",
        data_type: || DataType::Struct(schema::extra_info_fields()),
        fill: |b| extra_infos(b.rows, &b.ids),
    },
    FixedColumn {
        name: "label",
        doc: "the self-contained label JSON (same as reward_model.ground_truth), for OpenRLHF --data.label_key label",
        data_type: || DataType::Utf8,
        fill: |b| strings(b.rows.iter().map(|r| r.item.label.as_str())),
    },
    FixedColumn {
        name: "id",
        doc: "content hash (32 hex digits): equal ids are the same task",
        data_type: || DataType::Utf8,
        fill: |b| strings(b.ids.iter().map(String::as_str)),
    },
    FixedColumn {
        name: "family",
        doc: "the family name; the struct column of that name holds the instance",
        data_type: || DataType::Utf8,
        fill: |b| strings(b.rows.iter().map(|r| r.item.family)),
    },
    FixedColumn {
        name: "level",
        doc: "1–5 paper-compatible, 6–10 extended",
        data_type: || DataType::Int64,
        fill: |b| int64s(b.rows.iter().map(|r| i64::from(r.item.level))),
    },
    FixedColumn {
        name: "answer",
        doc: "the reference answer text (what goes inside <answer>…</answer>); an SFT target",
        data_type: || DataType::Utf8,
        fill: |b| strings(b.rows.iter().map(|r| r.item.answer.as_str())),
    },
    FixedColumn {
        name: "trace",
        doc: "the solver's step-by-step reasoning to the answer, every step checkable by the family (an SFT target: <think>{trace}</think><answer>{answer}</answer>); empty where a deduction derivation would pass 3,000 lines (about one in eight level 9 and one in four level 10 items) or where an abduction proof by cases would pass its bounds (12 cases deep, 400 lines; about 1 in 5,000 explanation items)",
        data_type: || DataType::Utf8,
        fill: |b| strings(b.rows.iter().map(|r| r.item.trace.as_str())),
    },
];

/// Build the record batch of a shard: the fixed columns, then one struct column per family.
pub fn record_batch(rows: &[Row]) -> Result<RecordBatch, DatasetError> {
    let batch = Batch {
        rows,
        ids: rows.iter().map(|r| r.item.id()).collect(),
    };
    let mut columns: Vec<ArrayRef> = FIXED_COLUMNS.iter().map(|c| (c.fill)(&batch)).collect();
    for family in registry::FAMILIES {
        columns.push(family_column(*family, rows));
    }
    Ok(RecordBatch::try_new(schema::row_schema(), columns)?)
}
