//! Images for the page as `data:image/png;base64,...` URIs (RFC 2397), so one JSON reply
//! carries a whole grid; base64 is RFC 4648's standard alphabet with padding.

use image::RgbImage;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 4648 base64 of `bytes`: each 3 bytes become 4 characters, `=` pads the last group.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The PNG bytes of `img`.
pub fn png(img: &RgbImage) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .expect("PNG encoding into memory does not fail");
    bytes.into_inner()
}

/// `img` as a PNG data URI.
pub fn png_uri(img: &RgbImage) -> String {
    format!("data:image/png;base64,{}", base64(&png(img)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x3f]), "//4/");
    }

    #[test]
    fn png_uri_round_trips_through_the_png_decoder() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
        let uri = png_uri(&img);
        assert!(uri.starts_with("data:image/png;base64,"));
        let back = image::load_from_memory(&png(&img)).unwrap().to_rgb8();
        assert_eq!(back, img);
    }
}
