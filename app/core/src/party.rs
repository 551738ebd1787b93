//! The 党群 list on the phone: the grid party branches (with their building party groups and
//! the party members who reported to the community) and the volunteers of the communities the
//! user's scopes reach into, as the server sent them in the reference data. Read-only: the
//! roster CSV import on the server is the only writer.

use gridlink_shared::party::{self, PartyDirectory};

use crate::{Client, Result, store};

impl Client {
    /// The party branches, groups, members and volunteers held on this device, grouped and
    /// sorted for the 党群 list ([`gridlink_shared::party::directory`]).
    pub fn party_directory(&self) -> Result<PartyDirectory> {
        Ok(party::directory(&store::roster(&self.db())?))
    }
}
