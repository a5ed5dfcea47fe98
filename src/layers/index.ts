/** Every custom layer of the model zoo; importing this file registers them for (de)serialisation. */
export { Normalize, validateNormalization, type NormalizeArgs } from './normalize.ts';
export { ChannelSlice, ChannelShuffle } from './channel-ops.ts';
