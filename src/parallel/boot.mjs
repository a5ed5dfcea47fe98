// Entry of a pool's child process: children do not inherit the parent's TypeScript loader, so
// register tsx here, then run the TypeScript module the pool named (argv[2], a file URL).
import { register } from 'tsx/esm/api';

register();
await import(process.argv[2]);
