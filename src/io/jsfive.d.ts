// The part of jsfive (pure-JS HDF5 reader, NIST) used by src/io/keras.ts; the package ships no types.
declare module 'jsfive' {
  export class Dataset {
    readonly shape: number[];
    readonly dtype: string | unknown;
    readonly value: ArrayLike<number>;
  }
  export class Group {
    readonly keys: string[];
    get(path: string): Group | Dataset | undefined;
  }
  export class File extends Group {
    constructor(buffer: ArrayBuffer, filename?: string);
  }
}
