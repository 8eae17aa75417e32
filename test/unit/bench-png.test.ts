import { inflateSync } from 'node:zlib';
import { latenessChart, tickStep } from '../../src/bench/chart';
import { Canvas, crc32, encodePng, PNG_SIGNATURE, textWidth } from '../../src/bench/png';

interface Chunk {
  type: string;
  data: Buffer;
  crc: number;
}

/** Splits a PNG into its chunks, checking the signature and each chunk's CRC on the way. */
function chunksOf(png: Buffer): Chunk[] {
  expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
  const chunks: Chunk[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    const crc = png.readUInt32BE(at + 8 + length);
    expect(crc).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
    chunks.push({ type, data, crc });
    at += 12 + length;
  }
  return chunks;
}

describe('crc32', () => {
  it('matches the standard check value and the constant CRC of IEND', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('encodePng', () => {
  it('writes the signature, IHDR, IDAT and IEND with valid CRCs', () => {
    const png = encodePng(2, 1, Uint8Array.from([255, 0, 0, 0, 0, 255]));
    const chunks = chunksOf(png);
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const header = chunks[0]?.data as Buffer;
    expect(header.length).toBe(13);
    expect(header.readUInt32BE(0)).toBe(2);
    expect(header.readUInt32BE(4)).toBe(1);
    // 8-bit truecolour, deflate, adaptive filtering, no interlace.
    expect([...header.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
    expect(chunks[2]?.crc).toBe(0xae426082);
  });

  it('stores each row behind a filter byte of 0, pixels unchanged', () => {
    const rgb = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const idat = chunksOf(encodePng(2, 2, rgb)).find((c) => c.type === 'IDAT') as Chunk;
    expect([...inflateSync(idat.data)]).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 11, 12]);
  });

  it('refuses pixel data of the wrong size', () => {
    expect(() => encodePng(2, 2, new Uint8Array(11))).toThrow(/expected 12 RGB bytes/);
  });
});

describe('Canvas', () => {
  const pixel = (c: Canvas, x: number, y: number) => [
    ...c.pixels.subarray((y * c.width + x) * 3, (y * c.width + x) * 3 + 3),
  ];

  it('fills rectangles clipped to the canvas, also with negative sizes', () => {
    const canvas = new Canvas(4, 4);
    canvas.fillRect(2, 3, 10, -2, [9, 8, 7]);
    expect(pixel(canvas, 3, 2)).toEqual([9, 8, 7]);
    expect(pixel(canvas, 2, 1)).toEqual([9, 8, 7]);
    expect(pixel(canvas, 2, 3)).toEqual([255, 255, 255]);
    expect(pixel(canvas, 1, 2)).toEqual([255, 255, 255]);
  });

  it('draws glyphs of the 5x7 font', () => {
    const canvas = new Canvas(12, 7);
    canvas.text(0, 0, '1', [0, 0, 0]);
    // "1": 0x04 in the top row, i.e. only the middle column of five.
    expect([0, 1, 2, 3, 4].map((x) => pixel(canvas, x, 0)[0])).toEqual([255, 255, 0, 255, 255]);
    // Its bottom row is 0x0e.
    expect([0, 1, 2, 3, 4].map((x) => pixel(canvas, x, 6)[0])).toEqual([255, 0, 0, 0, 255]);
    expect(textWidth('ab')).toBe(11);
    expect(textWidth('ab', 2)).toBe(22);
  });
});

describe('latenessChart', () => {
  it('is a PNG as wide as its groups need', () => {
    const lateness = { count: 10, p50: 0.1, p95: 0.3, max: 0.5, min: -0.2, early: 1 };
    const entries = [10, 100, 1000, 10000].flatMap((runs) =>
      ['launcher', 'worker'].map((side) => ({ side, runs, lateness: { ...lateness, max: runs / 100 } })),
    );
    const png = latenessChart(entries, 'title');
    const header = chunksOf(png)[0]?.data as Buffer;
    expect(header.readUInt32BE(0)).toBeGreaterThan(520);
    expect(header.readUInt32BE(4)).toBe(386);
  });
});

describe('tickStep', () => {
  it('picks 1, 2 or 5 times a power of ten', () => {
    expect(tickStep(10)).toBe(2);
    expect(tickStep(0.5)).toBe(0.1);
    expect(tickStep(300)).toBe(50);
    expect(tickStep(0)).toBe(1);
  });
});
