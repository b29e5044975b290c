//! What every group of settings shares: how a setting is declared and inherited, where it
//! was written, and how merge reports problems.

use crate::ngx::conf::Pos;

/// Declares a group of settings: each field an `Option`, `None` where the level does not write
/// it, and taken from the enclosing level at merge, field by field.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: Option<$ty>, )*
        }

        impl $name {
            /// Whether this level writes any of these settings.
            #[allow(dead_code)]
            pub fn written(&self) -> bool {
                false $( || self.$field.is_some() )*
            }

            /// Takes each setting this level does not write from the enclosing level.
            pub fn inherit(&mut self, prev: &$name) {
                $( if self.$field.is_none() { self.$field.clone_from(&prev.$field); } )*
            }
        }
    };
}
pub(crate) use settings;

/// A setting and where it was written, for errors and warnings about it.
#[derive(Clone)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

/// A configuration error found at merge, with the position of the directive it concerns.
pub struct MergeError {
    pub message: String,
    pub pos: Option<Pos>,
}

/// Warnings to log at merge (skipped JWKS entries, short secrets, a check left off), with
/// their position.
pub type Warnings = Vec<(String, Pos)>;
