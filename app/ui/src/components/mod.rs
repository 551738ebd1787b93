//! Pieces shared by several screens. Each takes plain props (view-model values, labels) so
//! it renders the same in a window and in a test.

pub mod badges;
pub mod case_row;
pub mod countdown;
pub mod icons;
pub mod page;
pub mod sync_bar;
pub mod tab_bar;
