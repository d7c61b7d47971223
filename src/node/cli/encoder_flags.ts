/**
 * Encoder flags shared by `sasha extract` and `sasha infer`: which encoder (the built-in CNN, an
 * `.onnx` file, a tfjs model directory) and how patches are prepared for it.
 *
 * @packageDocumentation
 */
import { ValueError } from '../../core/errors.js';
import type { Normalization } from '../../wsi/index.js';
import type { EncoderSpec } from '../encoder_loader.js';
import { numberFlag, type FlagSpec, type ParsedArgs } from './args.js';

/** The encoder flags (without `--encoder`, whose default differs per command). */
export const ENCODER_FLAGS: Record<string, FlagSpec> = {
  'input-size': { type: 'string', help: 'encoder input side (default: the model’s; builtin 224)' },
  'resize-size': { type: 'string', help: 'resize patches to this side, then centre-crop to --input-size (ONNX)' },
  normalization: { type: 'string', help: 'imagenet, unit or none (or --mean/--std)', default: 'imagenet' },
  mean: { type: 'string', help: 'normalisation means r,g,b on [0, 1] pixels (with --std), e.g. CONCH 0.48145466,0.4578275,0.40821073' },
  std: { type: 'string', help: 'normalisation standard deviations r,g,b (with --mean), e.g. CONCH 0.26862954,0.26130258,0.27577711' },
  'output-name': { type: 'string', help: 'model output with the features (ONNX output, GraphModel node)' },
  'token-pooling': { type: 'string', help: 'cls or mean, for encoders that return tokens [B, T, d]' },
  'prefix-tokens': { type: 'string', help: 'tokens skipped by --token-pooling mean (1 for a ViT CLS token; ONNX)', default: '0' },
  layout: { type: 'string', help: 'ONNX input layout NCHW or NHWC', default: "the model's" },
  'input-dtype': { type: 'string', help: 'ONNX input element type float32 or float16', default: "the model's" },
  threads: { type: 'string', help: 'ONNX Runtime intra-op threads', default: "ONNX Runtime's" },
};

function triple(args: ParsedArgs, name: string): number[] {
  const raw = String(args.values[name]);
  const v = raw.split(',').map((x) => Number(x.trim()));
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x)) || (name === 'std' && v.some((x) => x <= 0))) {
    throw new ValueError(`Expected --${name} to be three numbers r,g,b${name === 'std' ? ' > 0' : ''}, but got '${raw}'.`);
  }
  return v;
}

/** The normalisation from `--normalization` or `--mean`/`--std`; undefined when none is given. */
export function normalizationFromFlags(args: ParsedArgs): Normalization | undefined {
  const hasMean = args.values.mean !== undefined;
  const hasStd = args.values.std !== undefined;
  if (hasMean !== hasStd) throw new ValueError('Pass --mean and --std together (three numbers each, e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225).');
  if (hasMean) {
    if (args.values.normalization !== undefined) throw new ValueError('Pass either --normalization or --mean/--std, not both.');
    return { mean: triple(args, 'mean'), std: triple(args, 'std') };
  }
  const n = args.values.normalization as string | undefined;
  if (n === undefined) return undefined;
  if (!['imagenet', 'unit', 'none'].includes(n)) throw new ValueError(`Expected --normalization to be imagenet, unit or none (or --mean/--std), but got '${n}'.`);
  return n as Normalization;
}

/** The parts of an {@link EncoderSpec} the flags give (not `encoder`, `dim`, `seed`). */
export function encoderOptionsFromFlags(args: ParsedArgs): Omit<EncoderSpec, 'encoder'> {
  const pooling = args.values['token-pooling'] as string | undefined;
  if (pooling !== undefined && pooling !== 'cls' && pooling !== 'mean') throw new ValueError(`Expected --token-pooling to be cls or mean, but got '${pooling}'.`);
  const layout = args.values.layout as string | undefined;
  if (layout !== undefined && layout !== 'NCHW' && layout !== 'NHWC') throw new ValueError(`Expected --layout to be NCHW or NHWC, but got '${layout}'.`);
  const dtype = args.values['input-dtype'] as string | undefined;
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'float16') throw new ValueError(`Expected --input-dtype to be float32 or float16, but got '${dtype}'.`);
  const optInt = (flag: string, min: number) => (args.values[flag] !== undefined ? numberFlag(args, flag, 0, { integer: true, min }) : undefined);
  const out: Omit<EncoderSpec, 'encoder'> = {};
  const set = <K extends keyof typeof out>(k: K, v: (typeof out)[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('inputSize', optInt('input-size', 1));
  set('resizeSize', optInt('resize-size', 1));
  set('normalization', normalizationFromFlags(args));
  set('outputName', args.values['output-name'] as string | undefined);
  set('tokenPooling', pooling as 'cls' | 'mean' | undefined);
  set('prefixTokens', optInt('prefix-tokens', 0));
  set('layout', layout as 'NCHW' | 'NHWC' | undefined);
  set('dtype', dtype as 'float32' | 'float16' | undefined);
  set('threads', optInt('threads', 1));
  return out;
}

/** Whether an `--encoder` value names an ONNX model. */
export function isOnnxPath(encoder: string): boolean {
  return /\.onnx$/i.test(encoder);
}

/** What `sasha extract` records of an ONNX encoder's preprocessing in `extract.json`. */
export type OnnxExtractSettings = Pick<EncoderSpec, 'resizeSize' | 'outputName' | 'tokenPooling' | 'prefixTokens' | 'layout' | 'dtype'>;

/** The ONNX preprocessing and output choices of the flags, for `extract.json`. */
export function onnxSettings(spec: Omit<EncoderSpec, 'encoder'>): OnnxExtractSettings {
  const out: OnnxExtractSettings = {};
  for (const k of ['resizeSize', 'outputName', 'tokenPooling', 'prefixTokens', 'layout', 'dtype'] as const) {
    if (spec[k] !== undefined) (out as Record<string, unknown>)[k] = spec[k];
  }
  return out;
}
