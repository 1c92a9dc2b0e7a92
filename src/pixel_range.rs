//! The pixel range a model sees, shared by the engine (data loading, training) and the edge
//! build (turning a decoder's output back into pictures).

/// Pixel range the model sees: `[0, 1]` (pair with a sigmoid output) or `[-1, 1]` (tanh).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "engine",
    derive(serde::Deserialize, serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum PixelRange {
    #[default]
    Unit,
    Symmetric,
}

impl PixelRange {
    /// A model value back to a byte, clamped: `v * 255` for `Unit`, `(v + 1) / 2 * 255`
    /// for `Symmetric`.
    pub fn to_byte(self, v: f32) -> u8 {
        (self.to_unit(v).clamp(0.0, 1.0) * 255.0).round() as u8
    }

    /// A model value on the [0, 1] scale (not clamped): `v`, or `(v + 1) / 2`.
    pub fn to_unit(self, v: f32) -> f32 {
        match self {
            PixelRange::Unit => v,
            PixelRange::Symmetric => (v + 1.0) / 2.0,
        }
    }

    /// The inverse of [`PixelRange::to_unit`]: `v`, or `2v - 1`.
    pub fn from_unit(self, v: f32) -> f32 {
        match self {
            PixelRange::Unit => v,
            PixelRange::Symmetric => 2.0 * v - 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_clamp_in_either_range() {
        assert_eq!(PixelRange::Unit.to_byte(0.5), 128);
        assert_eq!(PixelRange::Unit.to_byte(-3.0), 0);
        assert_eq!(PixelRange::Symmetric.to_byte(0.0), 128);
        assert_eq!(PixelRange::Symmetric.to_byte(1.0), 255);
        assert_eq!(PixelRange::Symmetric.to_byte(7.0), 255);
        assert_eq!(PixelRange::Symmetric.to_byte(-1.0), 0);
        for r in [PixelRange::Unit, PixelRange::Symmetric] {
            assert_eq!(r.to_unit(r.from_unit(0.25)), 0.25);
        }
        assert_eq!(PixelRange::Symmetric.to_unit(-1.0), 0.0);
    }
}
