//! The published contracts in `schemas/` agree with the code.

use crate::util::repo;

fn published(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("schemas").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn row_schema_file_matches_the_writer() {
    assert_eq!(
        published("row.schema.json"),
        triad::dataset::schema::describe(),
        "schemas/row.schema.json is stale: regenerate with `triad schema row > schemas/row.schema.json`"
    );
}

#[test]
fn label_schema_file_matches_the_registry() {
    assert_eq!(
        published("label.schema.json"),
        triad::label_schema(),
        "schemas/label.schema.json is stale: regenerate with `triad schema label > schemas/label.schema.json`"
    );
}
