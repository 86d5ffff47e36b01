/**
 * Pure data utilities: a seeded PRNG, IID and Dirichlet (non-IID) partitions of a dataset among
 * federated-learning clients, and subsets. No I/O, no tfjs: the same seed gives the same numbers on
 * every machine (integer arithmetic on uint32 state; only the final [0,1) conversion is a float).
 */

/** A labelled dataset of fixed-width float rows. */
export interface Dataset {
  /** n rows of `x.length / n` features each, row-major (MNIST: 784 pixel values in 0..1). */
  x: Float32Array;
  /** n class labels (MNIST: 0..9). */
  y: Uint8Array;
  n: number;
}

export interface Rng {
  /** Uniform in [0, 1), 32 bits of randomness. */
  next(): number;
  /** Uniform uint32. */
  nextUint32(): number;
  /** Uniform integer in [0, n), unbiased; n >= 1 and n <= 2^32. */
  int(n: number): number;
  /** Standard normal N(0, 1) (Box-Muller). */
  normal(): number;
  /** Gamma(shape, 1), shape > 0 (Marsaglia-Tsang). */
  gamma(shape: number): number;
}

const TWO_POW_32 = 4294967296;

function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [s, (z ^ (z >>> 16)) >>> 0];
}

function seedWords(seed: number | string): [number, number] {
  if (typeof seed === "string") {
    // FNV-1a over UTF-16 code units, twice with different offsets, for 64 bits of seed.
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ 0x5bd1e995;
    for (let i = 0; i < seed.length; i++) {
      const c = seed.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193) >>> 0;
      b = Math.imul(b ^ c, 0x01000193) >>> 0;
    }
    return [a, b];
  }
  if (!Number.isSafeInteger(seed))
    throw new Error(`createRng: seed must be a safe integer or a string, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  return [lo, hi];
}

/**
 * xoshiro128** seeded through splitmix32 from a safe integer (all 53 bits used) or a string.
 */
export function createRng(seed: number | string): Rng {
  const [lo, hi] = seedWords(seed);
  let sm = lo ^ Math.imul(hi, 0x27d4eb2d);
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const [nextState, out] = splitmix32(sm ^ (i === 2 ? hi : 0));
    sm = nextState;
    s[i] = out;
  }
  if (s.every((w) => w === 0)) s[0] = 1;

  const nextUint32 = (): number => {
    const s0 = s[0] as number;
    const s1 = s[1] as number;
    const s2 = s[2] as number;
    const s3 = s[3] as number;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    const n2 = (s2 ^ s0) >>> 0;
    const n3 = (s3 ^ s1) >>> 0;
    const n1 = (s1 ^ n2) >>> 0;
    const n0 = (s0 ^ n3) >>> 0;
    s[0] = n0;
    s[1] = n1;
    s[2] = (n2 ^ t) >>> 0;
    s[3] = ((n3 << 11) | (n3 >>> 21)) >>> 0;
    return result;
  };
  const next = (): number => nextUint32() / TWO_POW_32;
  let spare: number | undefined;
  const normal = (): number => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const u1 = 1 - next(); // (0, 1]
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  const int = (n: number): number => {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) throw new Error(`Rng.int: bad bound ${n}`);
    // Rejection sampling: no modulo bias.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const v = nextUint32();
      if (v < limit) return v % n;
    }
  };
  const gamma = (shape: number): number => {
    if (!(shape > 0) || !Number.isFinite(shape))
      throw new Error(`Rng.gamma: shape must be > 0, got ${shape}`);
    if (shape < 1) {
      // Gamma(a) = Gamma(a + 1) * U^(1/a); computed in log space would be safer for tiny a, but
      // the product underflowing to 0 is handled by the callers (Dirichlet renormalizes).
      return gamma(shape + 1) * (1 - next()) ** (1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  };
  return { next, nextUint32, int, normal, gamma };
}

/** Fisher-Yates shuffle in place. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(array: T, rng: Rng): T {
  for (let i = array.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = array[i];
    array[i] = array[j];
    array[j] = tmp;
  }
  return array;
}

/** A uniformly random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}

/** One draw from Dirichlet(alpha, ..., alpha) over k categories. */
export function sampleDirichlet(k: number, alpha: number, rng: Rng): number[] {
  const g = Array.from({ length: k }, () => rng.gamma(alpha));
  const sum = g.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) {
    // All draws underflowed (extremely small alpha): all the mass on one category.
    const out = new Array<number>(k).fill(0);
    out[rng.int(k)] = 1;
    return out;
  }
  return g.map((v) => v / sum);
}

function checkClients(n: number, clients: number): void {
  if (!Number.isInteger(clients) || clients < 1)
    throw new Error(`partition: clients must be an integer >= 1, got ${clients}`);
  if (n < clients)
    throw new Error(`partition: ${n} samples cannot give each of ${clients} clients at least one`);
}

/**
 * IID partition: a random permutation of 0..n-1 cut into `clients` parts whose sizes differ by at
 * most one. Each part is sorted ascending; together they cover every index exactly once.
 */
export function partitionIid(n: number, clients: number, rng: Rng): number[][] {
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`partitionIid: n must be a non-negative integer, got ${n}`);
  checkClients(n, clients);
  const p = permutation(n, rng);
  const parts: number[][] = [];
  const base = Math.floor(n / clients);
  const extra = n % clients;
  let offset = 0;
  for (let c = 0; c < clients; c++) {
    const size = base + (c < extra ? 1 : 0);
    parts.push(Array.from(p.subarray(offset, offset + size)).sort((a, b) => a - b));
    offset += size;
  }
  return parts;
}

/**
 * Non-IID partition by label (Hsu et al. 2019): for every class, its samples are split among the
 * clients in proportions drawn from Dirichlet(alpha). Small alpha (0.1) gives each client a few
 * dominant classes; large alpha (100) approaches IID. Every client gets at least one sample: an empty
 * client takes one random sample from the currently largest client. Parts are sorted ascending and
 * together cover every index exactly once.
 */
export function partitionDirichlet(
  labels: ArrayLike<number>,
  clients: number,
  alpha: number,
  rng: Rng,
): number[][] {
  const n = labels.length;
  checkClients(n, clients);
  if (!(alpha > 0) || !Number.isFinite(alpha))
    throw new Error(`partitionDirichlet: alpha must be > 0, got ${alpha}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const label = labels[i] as number;
    if (!Number.isInteger(label) || label < 0)
      throw new Error(`partitionDirichlet: bad label ${label} at ${i}`);
    let list = byClass.get(label);
    if (!list) {
      list = [];
      byClass.set(label, list);
    }
    list.push(i);
  }
  const parts: number[][] = Array.from({ length: clients }, () => []);
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  for (const label of classes) {
    const idx = shuffleInPlace(byClass.get(label) as number[], rng);
    const p = sampleDirichlet(clients, alpha, rng);
    let cumulative = 0;
    let start = 0;
    for (let c = 0; c < clients; c++) {
      cumulative += p[c] as number;
      const end = c === clients - 1 ? idx.length : Math.min(idx.length, Math.round(cumulative * idx.length));
      const part = parts[c] as number[];
      for (let i = start; i < end; i++) part.push(idx[i] as number);
      start = Math.max(start, end);
    }
  }
  for (let c = 0; c < clients; c++) {
    const part = parts[c] as number[];
    if (part.length > 0) continue;
    let largest = 0;
    for (let d = 1; d < clients; d++) {
      if ((parts[d] as number[]).length > (parts[largest] as number[]).length) largest = d;
    }
    const donor = parts[largest] as number[];
    const k = rng.int(donor.length);
    part.push(donor[k] as number);
    donor[k] = donor[donor.length - 1] as number;
    donor.pop();
  }
  for (const part of parts) part.sort((a, b) => a - b);
  return parts;
}

/** Number of features per row of a dataset. */
export function featuresOf(dataset: Dataset): number {
  if (dataset.n <= 0) throw new Error("dataset is empty");
  const f = dataset.x.length / dataset.n;
  if (!Number.isInteger(f) || dataset.y.length !== dataset.n) {
    throw new Error(
      `malformed dataset: n=${dataset.n}, x.length=${dataset.x.length}, y.length=${dataset.y.length}`,
    );
  }
  return f;
}

/** A new dataset holding copies of the given rows, in the given order. */
export function subset(dataset: Dataset, indices: ArrayLike<number>): Dataset {
  const n = indices.length;
  if (dataset.n === 0) {
    if (n > 0) throw new Error("subset: index out of range of an empty dataset");
    return { x: new Float32Array(0), y: new Uint8Array(0), n: 0 };
  }
  const f = featuresOf(dataset);
  const x = new Float32Array(n * f);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i] as number;
    if (!Number.isInteger(j) || j < 0 || j >= dataset.n)
      throw new Error(`subset: index ${j} out of range 0..${dataset.n - 1}`);
    x.set(dataset.x.subarray(j * f, (j + 1) * f), i * f);
    y[i] = dataset.y[j] as number;
  }
  return { x, y, n };
}

/** Per-class sample counts of each part: counts[part][class]. */
export function labelHistogram(labels: ArrayLike<number>, parts: number[][], classes: number): number[][] {
  return parts.map((part) => {
    const counts = new Array<number>(classes).fill(0);
    for (const i of part) counts[labels[i] as number] = (counts[labels[i] as number] as number) + 1;
    return counts;
  });
}
