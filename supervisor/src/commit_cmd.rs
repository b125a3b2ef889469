//! `kennel commit UNIT NAME[:TAG]`: the unit's writable layer as a new image. A running
//! unit is frozen through the daemon (which owns its cgroup) while the layer is copied,
//! and thawed at once after; a stopped unit's layer (kept with `persist`) is read as is.

use kennel_image::commit;

use crate::commands::EXIT_OK;
use crate::control::client::{Client, ClientError};
use crate::control::protocol::{ErrorKind, RequestBody};
use crate::image_cmd::{fail, parse_ref, CommitArgs, Dirs};

/// How long the daemon keeps the unit frozen should this client die before thawing it.
const THAW_AFTER_MS: u64 = 60_000;

pub fn commit(a: CommitArgs) -> i32 {
    (|| {
        let r = parse_ref(&a.image)?;
        kennel_units::check_unit_name(&a.unit).map_err(fail)?;
        let dirs = Dirs::resolve(&a.store)?;
        let store = kennel_image::Store::open(&dirs.state_dir).map_err(fail)?;
        let dir = dirs.state_dir.join("containers").join(&a.unit);
        let unit = a.unit.clone();
        // Freeze when the daemon runs the unit; no daemon, or the unit is not running:
        // its layer does not change, read it as is.
        let frozen = match Client::connect(&a.store.client.socket).and_then(|mut c| {
            c.call(RequestBody::Freeze {
                unit: unit.clone(),
                thaw_after_ms: Some(THAW_AFTER_MS),
            })
        }) {
            Ok(_) => true,
            Err(ClientError::NoDaemon { .. }) => false,
            Err(ClientError::Daemon(e))
                if matches!(e.kind, ErrorKind::NotRunning | ErrorKind::UnknownUnit) =>
            {
                false
            }
            Err(e) => return Err(fail(format!("freeze {unit}: {e}"))),
        };
        let snap = commit::snapshot(&dir);
        if frozen {
            let thawed = Client::connect(&a.store.client.socket)
                .and_then(|mut c| c.call(RequestBody::Thaw { unit: unit.clone() }));
            if let Err(e) = thawed {
                eprintln!(
                    "kennel: warning: thaw {unit}: {e} (the daemon thaws it within a minute)"
                );
            }
        }
        let img = commit::finish(&store, snap.map_err(fail)?, &r).map_err(fail)?;
        println!("{}:{} {} layers", img.name, img.tag, img.layers.len());
        Ok(EXIT_OK)
    })()
    .unwrap_or_else(|c| c)
}
