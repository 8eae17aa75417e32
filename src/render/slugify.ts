/**
 * Slugs for ECS tags and task definition families.
 *
 * prefect-aws slugifies every task tag with python-slugify (`slugify(text, regex_pattern=…,
 * allow_unicode=True, lowercase=False)`, the default "legacy" pipeline of python-slugify 9.x), so the tags a
 * launcher writes must come out byte-for-byte the same: the ECS observer and users' cost reports match on them.
 * https://github.com/un33k/python-slugify/blob/master/slugify/_legacy.py
 */

/** The characters prefect-aws keeps in tag keys and values (`_TAG_REGEX` in ecs_worker.py). */
const TAG_DISALLOWED = /[^a-zA-Z0-9_./=+:@-]/gu;

/** Python's `html.entities.name2codepoint` (HTML 4), which python-slugify decodes by default: name:hex. */
const HTML_ENTITIES: ReadonlyMap<string, number> = new Map(
  (
    'AElig:c6 Aacute:c1 Acirc:c2 Agrave:c0 Alpha:391 Aring:c5 Atilde:c3 Auml:c4 Beta:392 Ccedil:c7 Chi:3a7 ' +
    'Dagger:2021 Delta:394 ETH:d0 Eacute:c9 Ecirc:ca Egrave:c8 Epsilon:395 Eta:397 Euml:cb Gamma:393 ' +
    'Iacute:cd Icirc:ce Igrave:cc Iota:399 Iuml:cf Kappa:39a Lambda:39b Mu:39c Ntilde:d1 Nu:39d OElig:152 ' +
    'Oacute:d3 Ocirc:d4 Ograve:d2 Omega:3a9 Omicron:39f Oslash:d8 Otilde:d5 Ouml:d6 Phi:3a6 Pi:3a0 ' +
    'Prime:2033 Psi:3a8 Rho:3a1 Scaron:160 Sigma:3a3 THORN:de Tau:3a4 Theta:398 Uacute:da Ucirc:db ' +
    'Ugrave:d9 Upsilon:3a5 Uuml:dc Xi:39e Yacute:dd Yuml:178 Zeta:396 aacute:e1 acirc:e2 acute:b4 aelig:e6 ' +
    'agrave:e0 alefsym:2135 alpha:3b1 amp:26 and:2227 ang:2220 aring:e5 asymp:2248 atilde:e3 auml:e4 ' +
    'bdquo:201e beta:3b2 brvbar:a6 bull:2022 cap:2229 ccedil:e7 cedil:b8 cent:a2 chi:3c7 circ:2c6 ' +
    'clubs:2663 cong:2245 copy:a9 crarr:21b5 cup:222a curren:a4 dArr:21d3 dagger:2020 darr:2193 deg:b0 ' +
    'delta:3b4 diams:2666 divide:f7 eacute:e9 ecirc:ea egrave:e8 empty:2205 emsp:2003 ensp:2002 ' +
    'epsilon:3b5 equiv:2261 eta:3b7 eth:f0 euml:eb euro:20ac exist:2203 fnof:192 forall:2200 frac12:bd ' +
    'frac14:bc frac34:be frasl:2044 gamma:3b3 ge:2265 gt:3e hArr:21d4 harr:2194 hearts:2665 hellip:2026 ' +
    'iacute:ed icirc:ee iexcl:a1 igrave:ec image:2111 infin:221e int:222b iota:3b9 iquest:bf isin:2208 ' +
    'iuml:ef kappa:3ba lArr:21d0 lambda:3bb lang:2329 laquo:ab larr:2190 lceil:2308 ldquo:201c le:2264 ' +
    'lfloor:230a lowast:2217 loz:25ca lrm:200e lsaquo:2039 lsquo:2018 lt:3c macr:af mdash:2014 micro:b5 ' +
    'middot:b7 minus:2212 mu:3bc nabla:2207 nbsp:a0 ndash:2013 ne:2260 ni:220b not:ac notin:2209 ' +
    'nsub:2284 ntilde:f1 nu:3bd oacute:f3 ocirc:f4 oelig:153 ograve:f2 oline:203e omega:3c9 omicron:3bf ' +
    'oplus:2295 or:2228 ordf:aa ordm:ba oslash:f8 otilde:f5 otimes:2297 ouml:f6 para:b6 part:2202 ' +
    'permil:2030 perp:22a5 phi:3c6 pi:3c0 piv:3d6 plusmn:b1 pound:a3 prime:2032 prod:220f prop:221d ' +
    'psi:3c8 quot:22 rArr:21d2 radic:221a rang:232a raquo:bb rarr:2192 rceil:2309 rdquo:201d real:211c ' +
    'reg:ae rfloor:230b rho:3c1 rlm:200f rsaquo:203a rsquo:2019 sbquo:201a scaron:161 sdot:22c5 sect:a7 ' +
    'shy:ad sigma:3c3 sigmaf:3c2 sim:223c spades:2660 sub:2282 sube:2286 sum:2211 sup:2283 sup1:b9 ' +
    'sup2:b2 sup3:b3 supe:2287 szlig:df tau:3c4 there4:2234 theta:3b8 thetasym:3d1 thinsp:2009 thorn:fe ' +
    'tilde:2dc times:d7 trade:2122 uArr:21d1 uacute:fa uarr:2191 ucirc:fb ugrave:f9 uml:a8 upsih:3d2 ' +
    'upsilon:3c5 uuml:fc weierp:2118 xi:3be yacute:fd yen:a5 yuml:ff zeta:3b6 zwj:200d zwnj:200c'
  )
    .split(' ')
    .map((pair) => {
      const [name, hex] = pair.split(':') as [string, string];
      return [name, Number.parseInt(hex, 16)] as const;
    }),
);

const DECIMAL_DIGIT = /^\p{Nd}$/u;

/**
 * The value of a run of Unicode decimal digits, as Python's `int()` reads them (`\d` in Python's `re` is
 * any Unicode decimal digit). Unicode encodes every decimal digit set as a contiguous, aligned block 0–9,
 * so a digit's value is its distance from the block's start modulo 10.
 * https://www.unicode.org/policies/stability_policy.html#Property_Value (Numeric_Type=Decimal)
 */
function decimalValue(digits: string, radix: number): bigint {
  let value = 0n;
  for (const ch of digits) {
    let digit: number;
    const cp = ch.codePointAt(0) as number;
    if (/[a-fA-F]/.test(ch)) digit = Number.parseInt(ch, 16);
    else {
      let start = cp;
      while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
      digit = (cp - start) % 10;
    }
    value = value * BigInt(radix) + BigInt(digit);
  }
  return value;
}

/**
 * Numeric references are replaced all or nothing per kind: Python's `chr()` raises on a value above
 * U+10FFFF, which the legacy pipeline catches around the whole substitution.
 */
function decodeNumericReferences(text: string, pattern: RegExp, radix: number): string {
  const values: bigint[] = [];
  for (const m of text.matchAll(pattern)) values.push(decimalValue(m[1] as string, radix));
  if (values.some((v) => v > 0x10ffffn)) return text;
  return text.replace(pattern, (_m, digits: string) =>
    String.fromCodePoint(Number(decimalValue(digits, radix))),
  );
}

function decodeEntities(text: string): string {
  let out = text.replace(/&([A-Za-z0-9]+);/g, (m, name: string) => {
    const cp = HTML_ENTITIES.get(name);
    return cp === undefined ? m : String.fromCodePoint(cp);
  });
  out = decodeNumericReferences(out, /&#(\p{Nd}+);/gu, 10);
  return decodeNumericReferences(out, /&#x([\p{Nd}a-fA-F]+);/gu, 16);
}

/**
 * python-slugify's legacy `slugify(text, regex_pattern=disallowed, lowercase=False, allow_unicode=True)`
 * with every other argument at its default (no length limit, `-` separator). `disallowed` must be a global,
 * unicode-aware regex matching one disallowed character.
 */
export function pythonSlugifyUnicode(text: string, disallowed: RegExp): string {
  let s = text.replace(/'+/g, '-');
  s = s.normalize('NFKC');
  s = decodeEntities(s);
  s = s.normalize('NFKC');
  s = s.replace(/'+/g, '');
  s = s.replace(/(?<=\p{Nd}),(?=\p{Nd})/gu, '');
  s = s.replace(disallowed, '-');
  s = s.replace(/-{2,}/g, '-');
  return s.replace(/^-+|-+$/g, '');
}

/** A tag key or value exactly as prefect-aws's ECS worker slugifies it. */
export function slugifyTag(text: string): string {
  return pythonSlugifyUnicode(text, TAG_DISALLOWED);
}

/** ECS task definition families: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens". */
const FAMILY_VALID = /^[A-Za-z0-9_-]{1,255}$/;
export const FAMILY_MAX_LENGTH = 255;

/**
 * Makes `text` a valid family, or returns it unchanged when it already is one, so every family that works
 * with prefect-aws today keeps its name and its registered revisions stay reusable after a switch to the
 * launcher. prefect-aws computes `slugify(family, max_length=255, regex_pattern=r"[^a-zA-Z0-9-_]+")` and
 * then discards the result, so a pool name with a space breaks registration; we use a slug instead, but
 * keep case (python-slugify would lower-case, renaming families that work) and fold accented letters to
 * ASCII (é → e) where python-slugify would transliterate with text-unidecode. Other characters become `-`.
 * https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html#ECS-RegisterTaskDefinition-request-family
 */
export function sanitizeFamilyPart(text: string, maxLength = FAMILY_MAX_LENGTH): string {
  if (FAMILY_VALID.test(text) && text.length <= maxLength) return text;
  const slug = text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, maxLength).replace(/-+$/, '');
}
