// The ONNX protobuf schema (package onnx, proto2) as a protobufjs reflection root. Messages, field
// names, numbers, types and the packed flags follow the official onnx/onnx.proto, IR version 14
// (ONNX 1.20); nothing else is defined here: protobufjs does the encoding and decoding.
//
// Field order inside each message is the field-number order, so a model decoded and encoded again
// comes out byte for byte as protobuf's C++ and Python writers write it (test/onnx-proto.test.ts
// checks that on real models).
import * as protobuf from 'protobufjs';

type FieldDef = { type: string; id: number; rule?: 'repeated'; options?: { packed: boolean } };

/** name:type:id, '*' prefix for repeated, '+' suffix for [packed = true]. */
function msg(spec: string, nested?: Record<string, unknown>, oneofs?: Record<string, string[]>): Record<string, unknown> {
  const fields: Record<string, FieldDef> = {};
  for (const item of spec.trim().split(/\s+/)) {
    const m = /^(\*?)(\w+):([\w.]+):(\d+)(\+?)$/.exec(item);
    if (!m) throw new Error(`internal: bad schema item ${item}`);
    const f: FieldDef = { type: m[3], id: Number(m[4]) };
    if (m[1]) f.rule = 'repeated';
    if (m[5]) f.options = { packed: true };
    fields[m[2]] = f;
  }
  const sorted: Record<string, FieldDef> = {};
  for (const [k, v] of Object.entries(fields).sort((a, b) => a[1].id - b[1].id)) sorted[k] = v;
  const out: Record<string, unknown> = { edition: 'proto2', fields: sorted };
  if (nested) out.nested = nested;
  if (oneofs) out.oneofs = Object.fromEntries(Object.entries(oneofs).map(([k, v]) => [k, { oneof: v }]));
  return out;
}

const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: msg(`name:string:1 f:float:2 i:int64:3 s:bytes:4 t:TensorProto:5 g:GraphProto:6 *floats:float:7
          *ints:int64:8 *strings:bytes:9 *tensors:TensorProto:10 *graphs:GraphProto:11 docString:string:13 tp:TypeProto:14
          *typeProtos:TypeProto:15 type:int32:20 refAttrName:string:21 sparseTensor:SparseTensorProto:22
          *sparseTensors:SparseTensorProto:23`),
        ValueInfoProto: msg('name:string:1 type:TypeProto:2 docString:string:3 *metadataProps:StringStringEntryProto:4'),
        NodeProto: msg(`*input:string:1 *output:string:2 name:string:3 opType:string:4 *attribute:AttributeProto:5
          docString:string:6 domain:string:7 overload:string:8 *metadataProps:StringStringEntryProto:9
          *deviceConfigurations:NodeDeviceConfigurationProto:10`),
        IntIntListEntryProto: msg('key:int64:1 *value:int64:2'),
        NodeDeviceConfigurationProto: msg('configurationId:string:1 *shardingSpec:ShardingSpecProto:2 pipelineStage:int32:3'),
        ShardingSpecProto: msg('tensorName:string:1 *device:int64:2 *indexToDeviceGroupMap:IntIntListEntryProto:3 *shardedDim:ShardedDimProto:4'),
        ShardedDimProto: msg('axis:int64:1 *simpleSharding:SimpleShardedDimProto:2'),
        SimpleShardedDimProto: msg('dimValue:int64:1 dimParam:string:2 numShards:int64:3', undefined, { dim: ['dimValue', 'dimParam'] }),
        TrainingInfoProto: msg(`initialization:GraphProto:1 algorithm:GraphProto:2 *initializationBinding:StringStringEntryProto:3
          *updateBinding:StringStringEntryProto:4`),
        ModelProto: msg(`irVersion:int64:1 producerName:string:2 producerVersion:string:3 domain:string:4 modelVersion:int64:5
          docString:string:6 graph:GraphProto:7 *opsetImport:OperatorSetIdProto:8 *metadataProps:StringStringEntryProto:14
          *trainingInfo:TrainingInfoProto:20 *functions:FunctionProto:25 *configuration:DeviceConfigurationProto:26`),
        DeviceConfigurationProto: msg('name:string:1 numDevices:int32:2 *device:string:3'),
        StringStringEntryProto: msg('key:string:1 value:string:2'),
        TensorAnnotation: msg('tensorName:string:1 *quantParameterTensorNames:StringStringEntryProto:2'),
        GraphProto: msg(`*node:NodeProto:1 name:string:2 *initializer:TensorProto:5 docString:string:10 *input:ValueInfoProto:11
          *output:ValueInfoProto:12 *valueInfo:ValueInfoProto:13 *quantizationAnnotation:TensorAnnotation:14
          *sparseInitializer:SparseTensorProto:15 *metadataProps:StringStringEntryProto:16`),
        TensorProto: msg(`*dims:int64:1 dataType:int32:2 segment:Segment:3 *floatData:float:4+ *int32Data:int32:5+
          *stringData:bytes:6 *int64Data:int64:7+ name:string:8 rawData:bytes:9 *doubleData:double:10+ *uint64Data:uint64:11+
          docString:string:12 *externalData:StringStringEntryProto:13 dataLocation:int32:14 *metadataProps:StringStringEntryProto:16`,
        { Segment: msg('begin:int64:1 end:int64:2') }),
        SparseTensorProto: msg('values:TensorProto:1 indices:TensorProto:2 *dims:int64:3'),
        TensorShapeProto: msg('*dim:Dimension:1', {
          Dimension: msg('dimValue:int64:1 dimParam:string:2 denotation:string:3', undefined, { value: ['dimValue', 'dimParam'] }),
        }),
        TypeProto: msg(`tensorType:Tensor:1 sequenceType:Sequence:4 mapType:Map:5 denotation:string:6 opaqueType:Opaque:7
          sparseTensorType:SparseTensor:8 optionalType:Optional:9`, {
          Tensor: msg('elemType:int32:1 shape:TensorShapeProto:2'),
          Sequence: msg('elemType:TypeProto:1'),
          Map: msg('keyType:int32:1 valueType:TypeProto:2'),
          Optional: msg('elemType:TypeProto:1'),
          SparseTensor: msg('elemType:int32:1 shape:TensorShapeProto:2'),
          Opaque: msg('domain:string:1 name:string:2'),
        }, { value: ['tensorType', 'sequenceType', 'mapType', 'optionalType', 'sparseTensorType', 'opaqueType'] }),
        OperatorSetIdProto: msg('domain:string:1 version:int64:2'),
        FunctionProto: msg(`name:string:1 *input:string:4 *output:string:5 *attribute:string:6 *node:NodeProto:7 docString:string:8
          *opsetImport:OperatorSetIdProto:9 domain:string:10 *attributeProto:AttributeProto:11 *valueInfo:ValueInfoProto:12
          overload:string:13 *metadataProps:StringStringEntryProto:14`),
      },
    },
  },
};

let root: protobuf.Root | null = null;

/** The protobufjs root of the ONNX schema (built once). */
export function onnxRoot(): protobuf.Root {
  if (root === null) root = protobuf.Root.fromJSON(SCHEMA as unknown as protobuf.INamespace);
  return root;
}

export function onnxType(name: 'ModelProto' | 'TensorProto' | 'GraphProto' | 'NodeProto'): protobuf.Type {
  return onnxRoot().lookupType(`onnx.${name}`);
}
