export { main, COMMANDS, VERSION } from './main.js';
export type { Io, Command } from './command.js';
