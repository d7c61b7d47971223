import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/index.js';
import { accuracy, balancedAccuracy, binaryAuc, calibrationErrorOfBins, classificationMetrics, confusionMatrix, expectedCalibrationError, f1Score, meanStd, perClassAuc, reliabilityBins, rocAuc } from '../../src/eval/index.js';
import { argmax } from '../../src/eval/metrics.js';

describe('accuracy, balanced accuracy, confusion matrix', () => {
  it('match hand counts', () => {
    const y = [0, 0, 0, 0, 1, 1];
    const p = [0, 0, 0, 1, 1, 0];
    // 4 of 6 right
    expect(accuracy(y, p)).toBeCloseTo(4 / 6, 12);
    // rows true, columns predicted: class 0 -> 3 right, 1 wrong; class 1 -> 1 wrong, 1 right
    expect(confusionMatrix(y, p)).toEqual([
      [3, 1],
      [1, 1],
    ]);
    // recalls 3/4 and 1/2 -> 0.625
    expect(balancedAccuracy(y, p)).toBeCloseTo(0.625, 12);
    expect(confusionMatrix([0], [0], 3)).toEqual([
      [1, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ]);
  });

  it('ignores classes absent from the labels in balanced accuracy', () => {
    // only class 2 is present, recall 1/2
    expect(balancedAccuracy([2, 2], [2, 0])).toBe(0.5);
  });

  it('rejects mismatched or empty inputs and non-integer labels', () => {
    expect(() => accuracy([0, 1], [0])).toThrow(ShapeError);
    expect(() => accuracy([], [])).toThrow(ValueError);
    expect(() => confusionMatrix([0, 1.5], [0, 1])).toThrow(/integer class/);
    expect(() => confusionMatrix([0, 3], [0, 1], 2)).toThrow(/\[0, 2\)/);
  });
});

describe('f1Score', () => {
  it('binary F1 of class 1 by hand', () => {
    // TP = 2 (i = 1, 2), FP = 1 (i = 3), FN = 1 (i = 4) -> 4 / (4 + 1 + 1)
    expect(f1Score([0, 1, 1, 0, 1], [0, 1, 1, 1, 0])).toBeCloseTo(4 / 6, 12);
    // no positive predicted and none true: 0 by convention
    expect(f1Score([0, 0], [0, 0])).toBe(0);
    // positive class 0: TP = 1, FP = 1, FN = 1 -> 2 / 4
    expect(f1Score([0, 1, 1, 0, 1], [0, 1, 1, 1, 0], { positiveClass: 0 })).toBeCloseTo(0.5, 12);
  });

  it('macro and micro F1 for three classes', () => {
    const y = [0, 1, 2, 2, 1, 0];
    const p = [0, 2, 2, 2, 1, 1];
    // class 0: TP 1, FP 0, FN 1 -> 2/3; class 1: TP 1, FP 1, FN 1 -> 1/2; class 2: TP 2, FP 1, FN 0 -> 4/5
    expect(f1Score(y, p)).toBeCloseTo((2 / 3 + 1 / 2 + 4 / 5) / 3, 12);
    // micro = accuracy = 4 / 6
    expect(f1Score(y, p, { average: 'micro' })).toBeCloseTo(4 / 6, 12);
  });
});

describe('ROC AUC', () => {
  it('counts ties one half', () => {
    // positives 0.8, 0.4; negatives 0.1, 0.4:
    // (0.8, 0.1) 1, (0.8, 0.4) 1, (0.4, 0.1) 1, (0.4, 0.4) 1/2 -> 3.5 / 4
    expect(binaryAuc([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.4])).toBeCloseTo(0.875, 12);
    // all scores equal: every pair a tie -> 0.5
    expect(binaryAuc([1, 0, 1, 0, 0], [0.3, 0.3, 0.3, 0.3, 0.3])).toBeCloseTo(0.5, 12);
    // perfectly inverted ranking
    expect(binaryAuc([1, 1, 0], [0.1, 0.2, 0.9])).toBe(0);
  });

  it('agrees with the pair count on a larger random example', () => {
    let seed = 3;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const y = Array.from({ length: 60 }, () => (rand() < 0.4 ? 1 : 0));
    const s = y.map((yi) => Math.round((rand() + 0.3 * yi) * 10) / 10); // rounded: many ties
    let wins = 0;
    let pairs = 0;
    for (let i = 0; i < y.length; i++) {
      for (let j = 0; j < y.length; j++) {
        if (y[i] === 1 && y[j] === 0) {
          pairs++;
          wins += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
        }
      }
    }
    expect(binaryAuc(y, s)).toBeCloseTo(wins / pairs, 12);
  });

  it('returns NaN with one class, and macro one-vs-rest for three classes', () => {
    expect(binaryAuc([1, 1], [0.2, 0.3])).toBeNaN();
    const y = [0, 1, 2, 0];
    const probs = [
      [0.7, 0.2, 0.1],
      [0.2, 0.5, 0.3],
      [0.1, 0.3, 0.6],
      [0.3, 0.4, 0.3],
    ];
    // class 0 scores: pos 0.7, 0.3 vs neg 0.2, 0.1 -> 1
    // class 1 scores: pos 0.5 vs neg 0.2, 0.3, 0.4 -> 1
    // class 2 scores: pos 0.6 vs neg 0.1, 0.3, 0.3 -> 1
    expect(rocAuc(y, probs)).toBeCloseTo(1, 12);
    const y2 = [0, 1, 2, 1];
    // class 0: pos 0.7 vs 0.2, 0.1, 0.3 -> 1; class 1: pos 0.5, 0.4 vs 0.2, 0.3 -> 1;
    // class 2: pos 0.6 vs 0.1, 0.3, 0.3 -> 1
    expect(rocAuc(y2, probs)).toBeCloseTo(1, 12);
    // binary from probabilities uses column 1
    expect(rocAuc([1, 0], [[0.3, 0.7], [0.9, 0.1]])).toBe(1);
  });
});

describe('expectedCalibrationError', () => {
  const y = [0, 1, 1, 0, 1];
  const probs = [
    [0.95, 0.05],
    [0.95, 0.05],
    [0.4, 0.6],
    [0.7, 0.3],
    [0.3, 0.7],
  ];

  it('matches a hand computation with 15 bins', () => {
    // confidences (argmax prob) and correctness:
    // 0.95 right, 0.95 wrong -> bin (14/15, 1]: acc 0.5, conf 0.95, weight 2/5 -> 0.4 * 0.45 = 0.18
    // 0.6 right               -> bin (8/15, 9/15]: acc 1, conf 0.6, weight 1/5 -> 0.2 * 0.4 = 0.08
    // 0.7 right, 0.7 right    -> bin (10/15, 11/15]: acc 1, conf 0.7, weight 2/5 -> 0.4 * 0.3 = 0.12
    expect(expectedCalibrationError(y, probs)).toBeCloseTo(0.18 + 0.08 + 0.12, 12);
    // one bin: 4 of 5 right, mean confidence 0.78 -> |0.8 - 0.78| = 0.02
    expect(expectedCalibrationError(y, probs, 1)).toBeCloseTo(0.02, 12);
  });

  it('is the ECE of pooled samples when computed from their pooled bins', () => {
    // the hand-computed set above split in two: its bins, pooled (counts summed, accuracy and
    // confidence count-weighted), give 0.18 + 0.08 + 0.12 as the whole set does
    const a = reliabilityBins(y.slice(0, 2), probs.slice(0, 2));
    const b = reliabilityBins(y.slice(2), probs.slice(2));
    const pooled = a.map((bin, k) => {
      const count = bin.count + b[k].count;
      const mean = (key: 'accuracy' | 'confidence') => (count === 0 ? NaN : ((bin.count ? bin.count * bin[key] : 0) + (b[k].count ? b[k].count * b[k][key] : 0)) / count);
      return { ...bin, count, accuracy: mean('accuracy'), confidence: mean('confidence') };
    });
    expect(calibrationErrorOfBins(pooled)).toBeCloseTo(0.18 + 0.08 + 0.12, 12);
    expect(calibrationErrorOfBins(a)).toBeCloseTo(0.45, 12);
  });

  it('is 0 for a perfectly calibrated confident model and rejects bad input', () => {
    expect(expectedCalibrationError([0, 1], [[1, 0], [0, 1]])).toBe(0);
    expect(() => expectedCalibrationError([0], [[1.2, -0.2]])).toThrow(ValueError);
    expect(() => expectedCalibrationError([0], [[0.5, 0.5]], 0)).toThrow(/bins/);
  });
});

describe('classificationMetrics', () => {
  it('collects every metric with the binary conventions of the reference', () => {
    const y = [0, 1, 1, 0];
    const probs = [
      [0.8, 0.2],
      [0.3, 0.7],
      [0.6, 0.4],
      [0.9, 0.1],
    ];
    const m = classificationMetrics(y, probs);
    // predictions [0, 1, 0, 0]: accuracy 3/4, recalls 1 and 1/2, F1 of class 1 = 2 / (2 + 0 + 1)
    expect(m.accuracy).toBeCloseTo(0.75, 12);
    expect(m.balancedAccuracy).toBeCloseTo(0.75, 12);
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    // P(1): positives 0.7, 0.4 vs negatives 0.2, 0.1 -> 1
    expect(m.auc).toBe(1);
    expect(m.n).toBe(4);
    expect(m.confusion).toEqual([
      [2, 0],
      [1, 1],
    ]);
    expect(m.ece).toBeGreaterThan(0);
    expect(() => classificationMetrics([0, 1], [[1, 0], [1]])).toThrow(ShapeError);
  });

  it('argmax takes the first maximum; meanStd is the population form', () => {
    expect(argmax([0.5, 0.5])).toBe(0);
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: Math.sqrt(2 / 3) });
  });
});

describe('reliability bins and per-class AUC', () => {
  it('bin confidences as (b/B, (b+1)/B] and give the ECE as their weighted gap', () => {
    // confidences 0.9 (right), 0.6 (wrong), 0.65 (right), 1.0 (right), 0 edge case not possible for argmax
    const y = [0, 1, 1, 0];
    const p = [
      [0.9, 0.1],
      [0.6, 0.4],
      [0.35, 0.65],
      [1, 0],
    ];
    const b = reliabilityBins(y, p, 10);
    expect(b).toHaveLength(10);
    // 0.9 -> bin 8 (0.8, 0.9]; 0.6 -> bin 5 (0.5, 0.6]; 0.65 -> bin 6; 1.0 -> bin 9
    expect(b[8]).toEqual({ lower: 0.8, upper: 0.9, count: 1, accuracy: 1, confidence: 0.9 });
    expect(b[5]).toMatchObject({ count: 1, accuracy: 0, confidence: 0.6 });
    expect(b[6]).toMatchObject({ count: 1, accuracy: 1, confidence: 0.65 });
    expect(b[9]).toMatchObject({ count: 1, accuracy: 1, confidence: 1 });
    expect(b[0].count).toBe(0);
    expect(Number.isNaN(b[0].accuracy)).toBe(true);
    // ECE = (0.1 + 0.6 + 0.35 + 0) / 4 = 0.2625
    expect(expectedCalibrationError(y, p, 10)).toBeCloseTo(0.2625, 12);
  });

  it('per-class one-vs-rest AUC by hand, and its macro mean for three classes', () => {
    const y = [0, 0, 1, 1, 2, 2];
    const p = [
      [0.7, 0.2, 0.1],
      [0.4, 0.5, 0.1],
      [0.3, 0.6, 0.1],
      [0.5, 0.3, 0.2],
      [0.2, 0.2, 0.6],
      [0.1, 0.3, 0.6],
    ];
    // class 0 scores: positives 0.7, 0.4; negatives 0.3, 0.5, 0.2, 0.1 -> 0.7 beats 4, 0.4 beats 3 -> 7/8
    // class 1 scores: positives 0.6, 0.3; negatives 0.2, 0.5, 0.2, 0.3 -> 4 + (2 + tie 0.5) = 6.5/8
    // class 2 scores: positives 0.6, 0.6; negatives 0.1, 0.1, 0.1, 0.2 -> 8/8
    const per = perClassAuc(y, p);
    expect(per[0]).toBeCloseTo(7 / 8, 12);
    expect(per[1]).toBeCloseTo(6.5 / 8, 12);
    expect(per[2]).toBe(1);
    expect(rocAuc(y, p)).toBeCloseTo((7 / 8 + 6.5 / 8 + 1) / 3, 12);
    const m = classificationMetrics(y, p);
    expect(m.perClassAuc).toEqual(per);
    // an absent class has no AUC
    expect(Number.isNaN(perClassAuc([0, 1], [[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]])[2])).toBe(true);
  });
});
