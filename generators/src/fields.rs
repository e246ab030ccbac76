//! Structured columns, described without depending on Arrow.
//!
//! A family lists its columns as [`FieldSpec`]s and fills them with [`FieldValue`]s; the dataset
//! writer in `triad` turns them into one nullable Arrow struct column named after the family.

/// The type of one structured field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// 64-bit signed integer.
    Int,
    /// Boolean.
    Bool,
    /// UTF-8 string.
    Str,
    /// List of 64-bit signed integers.
    IntList,
    /// List of booleans.
    BoolList,
    /// List of strings.
    StrList,
}

impl FieldKind {
    /// The name used in `schemas/row.schema.json`.
    pub fn schema_name(self) -> &'static str {
        match self {
            FieldKind::Int => "int64",
            FieldKind::Bool => "bool",
            FieldKind::Str => "string",
            FieldKind::IntList => "list<int64>",
            FieldKind::BoolList => "list<bool>",
            FieldKind::StrList => "list<string>",
        }
    }
}

/// One structured field of a family's column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Field name.
    pub name: &'static str,
    /// Field type.
    pub kind: FieldKind,
    /// Whether the field may be null.
    pub nullable: bool,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A value of one structured field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    /// Null (only for nullable fields).
    Null,
    /// See [`FieldKind::Int`].
    Int(i64),
    /// See [`FieldKind::Bool`].
    Bool(bool),
    /// See [`FieldKind::Str`].
    Str(String),
    /// See [`FieldKind::IntList`].
    IntList(Vec<i64>),
    /// See [`FieldKind::BoolList`].
    BoolList(Vec<bool>),
    /// See [`FieldKind::StrList`].
    StrList(Vec<String>),
}
