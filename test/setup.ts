// Every test file runs on the backend chosen once per process: JPEGDL_BACKEND or the best available.
import { initBackend } from '../src/backend.ts';

await initBackend();
