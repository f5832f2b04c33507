//! Seals a batch's openings of committed personal fields under their days' keys, as the one `personal/` side
//! entry the batch writes (store/personal_side.rs; docs/FORMAT.md, "Committed personal fields").

use super::command::StagedEvent;
use crate::error::{LedgerError, LedgerResult};
use crate::personal::vault::{Day, Vault};
use crate::store::personal_side;

/// The UTC day of a ledger time.
pub(super) fn day_of(time: crate::time::LedgerTime) -> Day {
    Day(time.as_micros().div_euclid(86_400_000_000) as i32)
}

/// The side entry holding the batch's sealed openings, if any event of it has personal fields.
pub(super) fn seal_batch(
    vault: &Vault,
    staged: &[StagedEvent],
) -> LedgerResult<Option<(Vec<u8>, Vec<u8>)>> {
    let mut sealed = Vec::new();
    for item in staged {
        let Some(openings) = &item.openings else {
            continue;
        };
        let plain = serde_json::to_vec(openings).map_err(|e| LedgerError::Config(e.to_string()))?;
        let bytes = vault
            .seal(
                day_of(item.event.time),
                &item.event.seq.to_be_bytes(),
                &plain,
            )
            .map_err(|e| LedgerError::Config(format!("sealing personal fields: {e}")))?;
        sealed.push((item.event.seq, bytes));
    }
    let Some(last) = staged.last() else {
        return Ok(None);
    };
    Ok((!sealed.is_empty()).then(|| {
        (
            personal_side::key(last.event.seq),
            personal_side::encode(&sealed),
        )
    }))
}
