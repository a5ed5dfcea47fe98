/**
 * Decoding of ONNX model files (protocol buffers) with protobufjs. Only the messages and fields
 * the converter reads are declared; protobufjs skips the rest of the wire data. Field numbers
 * are those of the ONNX format (onnx/onnx.proto, IR version 3 onwards).
 */
import protobuf from 'protobufjs';

const repeated = (type: string, id: number) => ({ rule: 'repeated', type, id });
const field = (type: string, id: number) => ({ type, id });

const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: field('int64', 1),
            producerName: field('string', 2),
            producerVersion: field('string', 3),
            graph: field('GraphProto', 7),
            opsetImport: repeated('OperatorSetIdProto', 8),
            functions: repeated('PresenceOnly', 25),
          },
        },
        // Model-local functions and sparse initializers are refused, so only their presence is read.
        PresenceOnly: { fields: {} },
        OperatorSetIdProto: { fields: { domain: field('string', 1), version: field('int64', 2) } },
        GraphProto: {
          fields: {
            node: repeated('NodeProto', 1),
            name: field('string', 2),
            initializer: repeated('TensorProto', 5),
            input: repeated('ValueInfoProto', 11),
            output: repeated('ValueInfoProto', 12),
            sparseInitializer: repeated('PresenceOnly', 15),
          },
        },
        NodeProto: {
          fields: {
            input: repeated('string', 1),
            output: repeated('string', 2),
            name: field('string', 3),
            opType: field('string', 4),
            attribute: repeated('AttributeProto', 5),
            domain: field('string', 7),
          },
        },
        AttributeProto: {
          fields: {
            name: field('string', 1),
            f: field('float', 2),
            i: field('int64', 3),
            s: field('bytes', 4),
            t: field('TensorProto', 5),
            floats: repeated('float', 7),
            ints: repeated('int64', 8),
            strings: repeated('bytes', 9),
            type: field('int32', 20),
            refAttrName: field('string', 21),
          },
        },
        TensorProto: {
          fields: {
            dims: repeated('int64', 1),
            dataType: field('int32', 2),
            floatData: repeated('float', 4),
            int32Data: repeated('int32', 5),
            int64Data: repeated('int64', 7),
            name: field('string', 8),
            rawData: field('bytes', 9),
            doubleData: repeated('double', 10),
            externalData: repeated('StringStringEntryProto', 13),
            dataLocation: field('int32', 14),
          },
        },
        StringStringEntryProto: { fields: { key: field('string', 1), value: field('string', 2) } },
        ValueInfoProto: { fields: { name: field('string', 1), type: field('TypeProto', 2) } },
        TypeProto: { fields: { tensorType: field('TypeProtoTensor', 1) } },
        TypeProtoTensor: { fields: { elemType: field('int32', 1), shape: field('TensorShapeProto', 2) } },
        TensorShapeProto: { fields: { dim: repeated('Dimension', 1) } },
        Dimension: { fields: { dimValue: field('int64', 1), dimParam: field('string', 2) } },
      },
    },
  },
};

/** ONNX TensorProto.DataType codes the converter reads. */
export const ONNX_DTYPE = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** ONNX TensorProto.DataType names, for error messages. */
export const ONNX_DTYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING',
  9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};

export interface OnnxTensor {
  dims?: number[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  name?: string;
  rawData?: Uint8Array;
  externalData?: { key?: string; value?: string }[];
  dataLocation?: number;
}

export interface OnnxAttribute {
  name?: string;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  type?: number;
  refAttrName?: string;
}

export interface OnnxNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  attribute?: OnnxAttribute[];
  domain?: string;
}

export interface OnnxValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: number; dimParam?: string }[] } } };
}

export interface OnnxGraph {
  node?: OnnxNode[];
  name?: string;
  initializer?: OnnxTensor[];
  input?: OnnxValueInfo[];
  output?: OnnxValueInfo[];
  sparseInitializer?: unknown[];
}

export interface OnnxModel {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  graph?: OnnxGraph;
  opsetImport?: { domain?: string; version?: number }[];
  functions?: unknown[];
}

let modelType: protobuf.Type | undefined;

function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(SCHEMA).lookupType('onnx.ModelProto');
  return modelType;
}

/** Decode the bytes of an .onnx file; 64-bit integers become numbers, byte fields stay Uint8Array. */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  const type = onnxModelType();
  return type.toObject(type.decode(bytes), { longs: Number, arrays: true }) as OnnxModel;
}

/** Encode a model in the same subset of fields (tests and tools write small ONNX graphs with it). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const type = onnxModelType();
  return type.encode(type.fromObject(model)).finish();
}
