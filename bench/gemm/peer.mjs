// The peer's reference results: onnxruntime-node running one-node MatMulInteger / MatMul models
// (bench/onnx-model.mjs; B a constant initializer, as ORT pre-packs it), one thread.
import { ortOptions } from '../common.mjs';
import { matMulIntegerModel, matMulModel } from '../onnx-model.mjs';

/** ORT's MatMulInteger of a ([M, K], int8 when aSigned) and b ([K, N], an initializer), int32 [M, N]. */
export async function ortMatMulInteger(ort, { M, K, N, b, aSigned = false, aZeroPoint = null, bZeroPoint = null }, a) {
  const s = await ort.InferenceSession.create(matMulIntegerModel({ M, K, N, b, aSigned, aZeroPoint, bZeroPoint }), ortOptions(1));
  try {
    return (await s.run({ a: new ort.Tensor(aSigned ? 'int8' : 'uint8', a, [M, K]) })).y.data;
  } finally {
    await s.release();
  }
}

/** ORT's MatMul of float32 a ([M, K]) and b ([K, N], an initializer), float32 [M, N]. */
export async function ortMatMul(ort, { M, K, N, b }, a) {
  const s = await ort.InferenceSession.create(matMulModel({ M, K, N, b }), ortOptions(1));
  try {
    return (await s.run({ a: new ort.Tensor('float32', a, [M, K]) })).y.data;
  } finally {
    await s.release();
  }
}
