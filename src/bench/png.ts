import { deflateSync } from 'node:zlib';

/**
 * Just enough raster graphics for the benchmark's chart, without native dependencies: an RGB canvas with
 * rectangles and a 5×7 bitmap font, encoded as a PNG (8-bit truecolour, no interlace).
 * PNG format: https://www.w3.org/TR/png-3/
 */

export type Rgb = readonly [number, number, number];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (ISO 3309, as PNG chunks use it). https://www.w3.org/TR/png-3/#5CRC-algorithm */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG of `width`×`height` pixels from RGB bytes, row by row (filter type 0 on every scanline). */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) {
    throw new Error(`expected ${width * height * 3} RGB bytes for ${width}x${height}, got ${rgb.length}`);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour
  // Compression, filter method and interlace stay 0.
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** 5×7 glyphs, one byte per row (bit 4 is the leftmost pixel), after the HD44780 character ROM. */
const GLYPHS: Record<string, string> = {
  '0': '0e11131519110e',
  '1': '040c040404040e',
  '2': '0e11010204081f',
  '3': '1f02040201110e',
  '4': '02060a121f0202',
  '5': '1f101e0101110e',
  '6': '0608101e11110e',
  '7': '1f010204080808',
  '8': '0e11110e11110e',
  '9': '0e11110f01020c',
  A: '0e1111111f1111',
  B: '1e11111e11111e',
  C: '0e11101010110e',
  D: '1c12111111121c',
  E: '1f10101e10101f',
  F: '1f10101e101010',
  G: '0e11101711110f',
  H: '1111111f111111',
  I: '0e04040404040e',
  J: '0702020202120c',
  K: '11121418141211',
  L: '1010101010101f',
  M: '111b1515111111',
  N: '11111915131111',
  O: '0e11111111110e',
  P: '1e11111e101010',
  Q: '0e11111115120d',
  R: '1e11111e141211',
  S: '0f10100e01011e',
  T: '1f040404040404',
  U: '1111111111110e',
  V: '11111111110a04',
  W: '1111111515150a',
  X: '11110a040a1111',
  Y: '1111110a040404',
  Z: '1f01020408101f',
  ' ': '00000000000000',
  '.': '00000000000c0c',
  ',': '000000000c0408',
  '-': '0000001f000000',
  '+': '0004041f040400',
  '=': '00001f001f0000',
  '(': '02040808080402',
  ')': '08040202020408',
  ':': '000c0c000c0c00',
  '/': '00010204081000',
  '%': '18190204081303',
  '<': '02040810080402',
  '>': '08040201020408',
};

/** Width in pixels of `text` drawn at `scale` (6 px per character: 5 of glyph, 1 of spacing). */
export function textWidth(text: string, scale = 1): number {
  return text.length ? (text.length * 6 - 1) * scale : 0;
}

export class Canvas {
  readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  /** Fills the rectangle, clipped to the canvas; negative sizes extend left/up. */
  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    const x0 = Math.max(0, Math.round(Math.min(x, x + w)));
    const x1 = Math.min(this.width, Math.round(Math.max(x, x + w)));
    const y0 = Math.max(0, Math.round(Math.min(y, y + h)));
    const y1 = Math.min(this.height, Math.round(Math.max(y, y + h)));
    for (let py = y0; py < y1; py++) {
      for (let px = x0; px < x1; px++) this.pixels.set(color, (py * this.width + px) * 3);
    }
  }

  /** Draws `text` with its top-left corner at (x, y); characters without a glyph are drawn as blanks. */
  text(x: number, y: number, text: string, color: Rgb, scale = 1): void {
    [...text.toUpperCase()].forEach((ch, i) => {
      const glyph = GLYPHS[ch] ?? GLYPHS[' '];
      for (let row = 0; row < 7; row++) {
        const bits = Number.parseInt(glyph?.slice(row * 2, row * 2 + 2) ?? '0', 16);
        for (let col = 0; col < 5; col++) {
          if (bits & (0x10 >> col))
            this.fillRect(x + (i * 6 + col) * scale, y + row * scale, scale, scale, color);
        }
      }
    });
  }

  png(): Buffer {
    return encodePng(this.width, this.height, this.pixels);
  }
}
