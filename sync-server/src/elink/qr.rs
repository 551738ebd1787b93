//! The notice-board QR code of a building's e-link, as a PNG.
//!
//! The `qrcode` crate gives the module matrix; the PNG is written here (8-bit greyscale,
//! one zlib stream through `flate2`) rather than through the `image` crate, which would bring
//! a dozen codecs for one black-and-white picture.

use std::io::Write;

use flate2::Crc;
use flate2::write::ZlibEncoder;
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module: a version-5 code at 10 px is about 450 px wide, sharp at 5 cm.
const MODULE_PIXELS: usize = 10;

/// The quiet zone the standard asks for, in modules.
const QUIET_MODULES: usize = 4;

/// `url` as a QR code PNG (error correction level M: a notice board gets dirty).
pub fn png(url: &str) -> anyhow::Result<Vec<u8>> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_MODULES) * MODULE_PIXELS;
    let dark = |x: usize, y: usize| {
        let (mx, my) = (x / MODULE_PIXELS, y / MODULE_PIXELS);
        (QUIET_MODULES..QUIET_MODULES + modules).contains(&mx)
            && (QUIET_MODULES..QUIET_MODULES + modules).contains(&my)
            && colors[(my - QUIET_MODULES) * modules + (mx - QUIET_MODULES)] == Color::Dark
    };
    // Each scanline: filter type 0, then one byte per pixel.
    let mut raw = Vec::with_capacity(side * (side + 1));
    for y in 0..side {
        raw.push(0);
        raw.extend((0..side).map(|x| if dark(x, y) { 0u8 } else { 255u8 }));
    }
    let mut zlib = ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&raw)?;
    let compressed = zlib.finish()?;

    let side = u32::try_from(side)?;
    let mut header = Vec::with_capacity(13);
    header.extend(side.to_be_bytes());
    header.extend(side.to_be_bytes());
    // Bit depth 8, colour type 0 (greyscale), compression 0, filter 0, no interlace.
    header.extend([8, 0, 0, 0, 0]);

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header)?;
    chunk(&mut out, b"IDAT", &compressed)?;
    chunk(&mut out, b"IEND", &[])?;
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> anyhow::Result<()> {
    out.extend(u32::try_from(data.len())?.to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_has_a_valid_signature_header_and_checksums() {
        let png = png("https://grid.example.cn/e/0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert!(width >= 21 * MODULE_PIXELS as u32, "width {width}");
        // The IHDR checksum covers its type and data.
        let mut crc = Crc::new();
        crc.update(&png[12..29]);
        assert_eq!(u32::from_be_bytes(png[29..33].try_into().unwrap()), crc.sum());
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
    }
}
