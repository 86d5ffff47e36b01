pragma circom 2.1.0;

// Building blocks of the dense-model circuits that src/zk/circuit.ts generates. Each computes exactly
// what src/oracle/fixed-point.ts computes (same integers, same roundings), and the hashes of
// src/zk/commitment.ts. Values are signed integers embedded in the BN254 field (v mod p); every template
// states the bound its input must respect, and the generator derives the bounds layer by layer so that
// no value ever wraps around the field.

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";

// h = length; for each chunk of `rate` values (the last zero-padded): h = Poseidon([h, ...chunk]).
template Sponge(n, rate, length) {
    signal input in[n];
    signal output out;
    var chunks = (n + rate - 1) \ rate;
    component hash[chunks];
    for (var c = 0; c < chunks; c++) {
        hash[c] = Poseidon(rate + 1);
        if (c == 0) {
            hash[c].inputs[0] <== length;
        } else {
            hash[c].inputs[0] <== hash[c - 1].out;
        }
        for (var k = 0; k < rate; k++) {
            if (c * rate + k < n) {
                hash[c].inputs[k + 1] <== in[c * rate + k];
            } else {
                hash[c].inputs[k + 1] <== 0;
            }
        }
    }
    out <== hash[chunks - 1].out;
}

// The input digest of src/zk/commitment.ts, which also constrains every -2^bits <= x[i] < 2^bits: each
// u = x + 2^bits is decomposed into bits + 1 bits, and `perElement` of them are packed into one field
// element (a linear combination, so packing adds no constraint to the range check's).
template InputDigest(n, bits, perElement, rate) {
    signal input x[n];
    signal output out;
    var elements = (n + perElement - 1) \ perElement;
    component range[n];
    component sponge = Sponge(elements, rate, n);
    var packed[elements];
    for (var e = 0; e < elements; e++) packed[e] = 0;
    for (var i = 0; i < n; i++) {
        range[i] = Num2Bits(bits + 1);
        range[i].in <== x[i] + (1 << bits);
        packed[i \ perElement] += (x[i] + (1 << bits)) * (1 << ((bits + 1) * (i % perElement)));
    }
    for (var e = 0; e < elements; e++) sponge.in[e] <== packed[e];
    out <== sponge.out;
}

// out = floor((acc + 2^(s-1)) / 2^s) (acc when s = 0), and nonNeg = (out >= 0), for |acc| + 2^(s-1) < 2^accBits.
// The shifted value acc + half + 2^accBits lies in [0, 2^(accBits+1)); its bits from s up are
// out + 2^(accBits-s), and its top bit is set exactly when out >= 0.
template RoundShift(accBits, s) {
    signal input acc;
    signal output out;
    signal output nonNeg;
    var half = s == 0 ? 0 : 1 << (s - 1);
    component b = Num2Bits(accBits + 1);
    b.in <== acc + half + (1 << accBits);
    var high = 0;
    for (var i = s; i <= accBits; i++) {
        high += b.out[i] * (1 << (i - s));
    }
    out <== high - (1 << (accBits - s));
    nonNeg <== b.out[accBits];
}

// One dense layer: acc_j = sum_i W[i][j] * a_i + b_j * 1e6, then RoundShift. |a_i| < 2^inBits.
template Dense(nIn, nOut, s, accBits) {
    signal input a[nIn];
    signal input kernel[nIn * nOut];
    signal input bias[nOut];
    signal output z[nOut];
    signal output nonNeg[nOut];
    signal prod[nIn][nOut];
    component shift[nOut];
    for (var j = 0; j < nOut; j++) {
        var acc = bias[j] * 1000000;
        for (var i = 0; i < nIn; i++) {
            prod[i][j] <== kernel[i * nOut + j] * a[i];
            acc += prod[i][j];
        }
        shift[j] = RoundShift(accBits, s);
        shift[j].acc <== acc;
        z[j] <== shift[j].out;
        nonNeg[j] <== shift[j].nonNeg;
    }
}

// max(0, z), given nonNeg = (z >= 0) from RoundShift.
template Relu() {
    signal input z;
    signal input nonNeg;
    signal output out;
    out <== z * nonNeg;
}

// sigmoidFixed of fixed-point.ts: piecewise-linear between knots every 1/8 on [0, 16], mirrored for
// negative x. |x| < 2^xBits; nonNeg = (x >= 0).
template SigmoidFixed(xBits) {
    signal input x;
    signal input nonNeg;
    signal output out;
    var T[129] = [
        500000, 531209, 562177, 592667, 622459, 651355, 679179, 705785, 731059, 754915, 777300, 798187,
        817574, 835484, 851953, 867036, 880797, 893309, 904651, 914901, 924142, 932453, 939913, 946597,
        952574, 957912, 962673, 966914, 970688, 974043, 977023, 979668, 982014, 984094, 985936, 987568,
        989013, 990292, 991423, 992423, 993307, 994089, 994780, 995390, 995930, 996406, 996827, 997199,
        997527, 997817, 998073, 998299, 998499, 998675, 998830, 998968, 999089, 999196, 999290, 999374,
        999447, 999512, 999569, 999620, 999665, 999704, 999739, 999769, 999797, 999820, 999842, 999860,
        999877, 999891, 999904, 999915, 999925, 999934, 999942, 999949, 999955, 999960, 999965, 999969,
        999972, 999976, 999979, 999981, 999983, 999985, 999987, 999989, 999990, 999991, 999992, 999993,
        999994, 999995, 999995, 999996, 999996, 999997, 999997, 999997, 999998, 999998, 999998, 999998,
        999999, 999999, 999999, 999999, 999999, 999999, 999999, 999999, 999999, 1000000, 1000000,
        1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000, 1000000,
        1000000
    ];
    // t = |x| * 8 = k * 1e6 + f with 0 <= f < 1e6: k is the knot, f the position within the step.
    signal absX <== x * (2 * nonNeg - 1);
    signal k <-- (absX * 8) \ 1000000;
    signal f <== absX * 8 - k * 1000000;
    component kBits = Num2Bits(xBits + 3);
    kBits.in <== k;
    component fBits = Num2Bits(20);
    fBits.in <== f;
    component fBelow = LessThan(20);
    fBelow.in[0] <== f;
    fBelow.in[1] <== 1000000;
    fBelow.out === 1;
    // One-hot selection of the knot; all zero when k >= 128, where sigma is 1e6.
    component is[128];
    var inTable = 0;
    var lo = 0;
    var hi = 0;
    for (var i = 0; i < 128; i++) {
        is[i] = IsEqual();
        is[i].in[0] <== k;
        is[i].in[1] <== i;
        inTable += is[i].out;
        lo += is[i].out * T[i];
        hi += is[i].out * T[i + 1];
    }
    // q = floor(((hi - lo) * f + 5e5) / 1e6), the rounded interpolation step (0 outside the table).
    signal step <== (hi - lo) * f;
    signal q <-- (step + 500000) \ 1000000;
    signal r <== step + 500000 - q * 1000000;
    component qBits = Num2Bits(16);
    qBits.in <== q;
    component rBits = Num2Bits(20);
    rBits.in <== r;
    component rBelow = LessThan(20);
    rBelow.in[0] <== r;
    rBelow.in[1] <== 1000000;
    rBelow.out === 1;
    signal positive <== lo + q + (1 - inTable) * 1000000;
    out <== positive + (1 - nonNeg) * (1000000 - 2 * positive);
}

// answerOf of src/oracle/client.ts: the index of the largest value, the lowest on ties. |v| < 2^bits.
template ArgMax(n, bits) {
    signal input v[n];
    signal output index;
    signal best[n];
    signal at[n];
    component greater[n];
    best[0] <== v[0];
    at[0] <== 0;
    for (var j = 1; j < n; j++) {
        greater[j] = LessThan(bits + 1);
        greater[j].in[0] <== best[j - 1] + (1 << bits);
        greater[j].in[1] <== v[j] + (1 << bits);
        best[j] <== best[j - 1] + greater[j].out * (v[j] - best[j - 1]);
        at[j] <== at[j - 1] + greater[j].out * (j - at[j - 1]);
    }
    index <== at[n - 1];
}

// One held-out example of a validator's score: correct = 1 when `label` is the argmax of the exact logits
// acc_j = sum_i kernel[i][j] * x_i + bias_j * 1e6 (before any rounding; ties to the lowest index), else 0.
// |acc_j| < 2^accBits.
template Correct(d, c, accBits) {
    signal input x[d];
    signal input label;
    signal input kernel[d * c];
    signal input bias[c];
    signal output correct;
    signal prod[d][c];
    component argmax = ArgMax(c, accBits);
    for (var j = 0; j < c; j++) {
        var acc = bias[j] * 1000000;
        for (var i = 0; i < d; i++) {
            prod[i][j] <== kernel[i * c + j] * x[i];
            acc += prod[i][j];
        }
        argmax.v[j] <== acc;
    }
    component same = IsEqual();
    same.in[0] <== argmax.index;
    same.in[1] <== label;
    correct <== same.out;
}
