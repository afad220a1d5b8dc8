// The layer registry. Each layer type declares, in one entry: how it is described in a model file
// (its spec: JSON of its constructor arguments), its parameters, what input it takes, how it runs
// in float, and how it is quantized and which stage that gives. The graph (graph.ts), model files
// (file.ts) and quantizeModel (quantize-model.ts) dispatch through the registry; a module of a
// type without an entry is refused in one place (layerTypeOf). docs/architecture.md: "The layer
// registry", with the worked example "add a layer type".
import { rangeError, typeError } from '../errors';
import { Module } from '../nn/module';
import type { FileCtx, SavedLayer } from './file-parts';
import { BUILTIN_LAYERS } from './layers';
import type { ObserverChoice } from './quantize-model';
import type { ActQParams, FloatKernel, LayerMode, QuantMode, Stage, WeightGranularity } from './stages';

/** One leaf layer as model files describe it: its type and the JSON fields that rebuild it. */
export interface LayerSpec {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** How one quantizable layer is quantized (options, with options.layers[name] applied). */
export interface LayerSettings {
  /** How it runs; 'float' keeps it in float32. */
  mode: LayerMode;
  bits: number;
  granularity: WeightGranularity;
  scheme: 'symmetric' | 'asymmetric';
  /** Static mode: the observer of its input. */
  observer: ObserverChoice;
}

/** Weight qparams given to buildQuantizedModel instead of computed from the weights. */
export interface WeightQParams {
  /** One scale per tensor, per output channel or per group (as the layer's granularity): [1], [out] or [out * groups]. */
  scale: Float32Array | readonly number[];
  /** Zero points, the scale's length (default all 0; 0 for symmetric signed codes). */
  zeroPoint?: ArrayLike<number>;
  /** When given, checked against the layer's bits (set by options.bits or options.layers[name].bits). */
  bits?: number;
}

/** What a quantizer's checks and build see of one layer. */
export interface QuantizeContext<M extends Module = Module, S extends LayerSpec = LayerSpec> {
  name: string;
  module: M;
  spec: S;
  settings: LayerSettings;
  /** Weight rounding and qparams arithmetic (options.formula). */
  formula: 'onnx' | 'pytorch';
  /** Dynamic mode: activation dtype and granularity (options.activation, options.activationGranularity). */
  activation: 'uint8' | 'int8';
  activationGranularity: 'per-row' | 'per-tensor';
  /** Where a setting came from, for errors: `options.layers['1'].granularity` for an override, else `options.granularity`. */
  field(key: keyof LayerSettings): string;
}

export interface BuildContext<M extends Module = Module, S extends LayerSpec = LayerSpec> extends QuantizeContext<M, S> {
  /** A ReLU follows and is fused into this stage (only for entries with fusesRelu). */
  relu: boolean;
  /** Input qparams when the layer takes codes (takesCodes): calibrated or given; else null. */
  input: ActQParams | null;
  /** Weight qparams given to buildQuantizedModel, or null (compute them from the weights). */
  weight: WeightQParams | null;
  /** Where the given weight qparams are, for errors: `given.weightQParams['1']`. */
  weightField: string;
}

/** How a layer type is quantized. Absent in an entry: the layer always runs float. */
export interface LayerQuantizer<M extends Module = Module, S extends LayerSpec = LayerSpec> {
  /** The modes it runs in besides 'float'. A model-wide mode it lacks keeps it float; a per-layer one is an error. */
  readonly modes: readonly Exclude<QuantMode, 'float'>[];
  /** Checks its settings before any value is looked at (e.g. groups only for weight-only). */
  checkSettings?(ctx: QuantizeContext<M, S>): void;
  /** Checks the layer's values before quantizing (finite weights, accumulator bounds); not called for mode 'float'. */
  checkValues?(ctx: QuantizeContext<M, S>): void;
  /** Whether in these settings it takes uint8 codes, so that its input needs activation qparams (static mode). */
  takesCodes(settings: LayerSettings): boolean;
  /** Its stage in one of its modes (a layer kept float, mode 'float', is a FloatStage). */
  build(ctx: BuildContext<M, S>): Stage;
  /** Its stage from a model file, for a run other than 'float'; `relu`: a ReLU is fused. */
  load(c: FileCtx, layer: SavedLayer<S>, run: Exclude<QuantMode, 'float'>, relu: boolean): Stage;
}

/** One layer type. Its functions are declared as methods (parameters checked bivariantly), so that entries of different types fit one registry. */
export interface LayerType<M extends Module = Module, S extends LayerSpec = LayerSpec> {
  /** Its `type` in model files ('Linear'); unique. */
  readonly type: string;
  /** Its nn class. A module takes the entry of its own class, else of its nearest registered base class. */
  readonly module: abstract new (...args: never[]) => M;
  /** The spec of a module (with `type`); null when this one cannot be a leaf (a Sequential that has layers). */
  describe(m: M): S | null;
  /** The spec from a model file's JSON, every field checked (`field` names it in errors); v.type is this type. */
  check(field: string, v: Record<string, unknown>): S;
  /** A fresh module of this spec (its parameters are then loaded). */
  create(spec: S): M;
  /** Its parameters' state dict suffixes and shapes, in the module's order (default: none). */
  params?(spec: S): [string, number[]][];
  /** 'int': it takes int32 ids (an Embedding); default 'float'. */
  readonly input?: 'float' | 'int';
  /** Input features it fixes: a number (a Linear's inFeatures); 'any' when it takes any input (then the model's are unknown); absent: features pass through it. */
  inFeatures?(spec: S): number | 'any';
  /** It returns its input unchanged at inference (codes pass through it). */
  readonly passThrough?: boolean;
  /** A pass-through layer's output shape for an input with a shape (Flatten: [N, rest]). */
  outShape?(shape: readonly number[]): readonly number[];
  /** It is a ReLU (fused into a preceding layer whose entry has fusesRelu). */
  readonly relu?: boolean;
  /** A following ReLU is fused into its stage (its quantizer's build and load get relu; in float, its floatKernel applies it). Needs floatKernel. */
  readonly fusesRelu?: boolean;
  /** A float kernel used instead of module.forward when it runs float (Linear: the packed fp32 GEMM). */
  floatKernel?(m: M): FloatKernel;
  /** How it is quantized; absent: always float. */
  readonly quantize?: LayerQuantizer<M, S>;
}

const byType = new Map<string, LayerType>();
const byClass = new Map<unknown, LayerType>();
const builtin = new Set<string>();

const QUANT_MODES = ['dynamic', 'static', 'weight-only'] as const;

function checkEntry(t: LayerType): void {
  const e = t as unknown as Record<string, unknown>;
  if (typeof e !== 'object' || e === null) throw typeError('layerType', 'a layer type entry { type, module, describe, check, create, ... }', t);
  if (typeof e.type !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]{0,63}$/.test(e.type)) {
    throw rangeError('layerType.type', 'a name of letters, digits, _ and . (at most 64)', JSON.stringify(e.type) ?? String(e.type));
  }
  if (typeof e.module !== 'function' || !((e.module as { prototype: unknown }).prototype instanceof Module)) {
    throw typeError('layerType.module', 'an nn Module class', e.module);
  }
  for (const k of ['describe', 'check', 'create'] as const) if (typeof e[k] !== 'function') throw typeError(`layerType.${k}`, 'a function', e[k]);
  for (const k of ['params', 'inFeatures', 'outShape', 'floatKernel'] as const) {
    if (e[k] !== undefined && typeof e[k] !== 'function') throw typeError(`layerType.${k}`, 'a function', e[k]);
  }
  if (e.fusesRelu === true && typeof e.floatKernel !== 'function') throw typeError('layerType.floatKernel', 'a function (fusesRelu needs it: a float stage applies the fused ReLU in its kernel)', e.floatKernel);
  if (e.input !== undefined && e.input !== 'float' && e.input !== 'int') throw rangeError('layerType.input', "'float' or 'int'", JSON.stringify(e.input) ?? String(e.input));
  const q = e.quantize as Record<string, unknown> | undefined;
  if (q !== undefined) {
    if (typeof q !== 'object' || q === null) throw typeError('layerType.quantize', 'a quantizer { modes, takesCodes, build, load }', q);
    if (!Array.isArray(q.modes) || q.modes.length === 0 || q.modes.some((m) => !(QUANT_MODES as readonly unknown[]).includes(m))) {
      throw typeError('layerType.quantize.modes', "a list of 'dynamic', 'static', 'weight-only'", q.modes);
    }
    for (const k of ['takesCodes', 'build', 'load'] as const) if (typeof q[k] !== 'function') throw typeError(`layerType.quantize.${k}`, 'a function', q[k]);
  }
  if (byType.has(t.type)) throw rangeError('layerType.type', 'a type not registered yet', `'${t.type}' (registered)`);
  if (byClass.has(t.module)) throw rangeError('layerType.module', 'a class no other type has', `${t.module.name} (the class of '${byClass.get(t.module)!.type}')`);
}

/**
 * Adds a layer type: from then on the graph, model files and quantizeModel take its modules (a
 * subclass of an nn class takes the nearest registered class's entry unless it has its own).
 */
export function registerLayer<M extends Module, S extends LayerSpec>(t: LayerType<M, S>): void {
  checkEntry(t as unknown as LayerType);
  byType.set(t.type, t as unknown as LayerType);
  byClass.set(t.module, t as unknown as LayerType);
}

/** Removes a type added with registerLayer (built-in types stay). Returns whether it was registered. */
export function unregisterLayer(type: string): boolean {
  if (builtin.has(type)) throw rangeError('type', 'a type added with registerLayer (built-in types stay)', `'${type}'`);
  const t = byType.get(type);
  if (!t) return false;
  byType.delete(type);
  byClass.delete(t.module);
  return true;
}

/** The registered types in order (built-ins first). */
export function layerTypes(): LayerType[] {
  return [...byType.values()];
}

/** The entry of a spec's type, or undefined. */
export function layerTypeNamed(type: string): LayerType | undefined {
  return byType.get(type);
}

/** The entry of a spec's type read from a registry that built it (a type removed since is an internal error). */
export function entryOf(spec: LayerSpec): LayerType {
  const t = byType.get(spec.type);
  if (!t) throw new Error(`internal: layer type '${spec.type}' is not registered`);
  return t;
}

/** The entry and spec of a leaf module; throws (the one place unknown modules are refused) for a type without one. */
export function describeLayer(m: Module, where: string): { type: LayerType; spec: LayerSpec } {
  let t: LayerType | undefined;
  for (let p = Object.getPrototypeOf(m); p !== null && p !== Module.prototype && t === undefined; p = Object.getPrototypeOf(p)) {
    t = byClass.get(p.constructor);
  }
  const spec = t?.describe(m) ?? null;
  if (!t || !spec) {
    const names = layerTypes().filter((x) => x.type !== 'Sequential').map((x) => x.type);
    throw typeError(where, `a Sequential of nn layers (${names.join(', ')}; other types need registerLayer)`, m);
  }
  return { type: t, spec };
}

/** Names of the registered types whose entries satisfy `f`, for messages ('Linear' or 'Linear, Scale'). */
export function typesWhere(f: (t: LayerType) => boolean): string {
  return layerTypes().filter(f).map((t) => t.type).join(', ');
}

export { specBool, specInt, specNumber, specOneOf } from './spec-fields';

for (const t of BUILTIN_LAYERS) {
  registerLayer(t);
  builtin.add(t.type);
}
