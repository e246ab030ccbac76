//! One module per topic; each exports `benches`. Shared here: the items benches run on.

pub mod generate;
pub mod score;
pub mod shards;

use triad::generators::{DynFamily, GenOptions, Item, ItemCoords, PromptStyle};

/// The train items of a family and level for a seed, in stream order (rejected candidates skipped),
/// each with its candidate index.
pub fn items(
    family: &'static dyn DynFamily,
    level: u8,
    seed: u64,
) -> impl Iterator<Item = (u64, Item)> {
    (0..).filter_map(move |index| {
        let coords = ItemCoords {
            seed,
            family: family.name(),
            level,
            index,
        };
        family
            .candidate(&coords, &GenOptions::default(), PromptStyle::Chat)
            .unwrap()
            .map(|item| (index, item))
    })
}
