//! One module per topic; each exports `benches`.

pub mod generate;
pub mod score;
pub mod shards;
