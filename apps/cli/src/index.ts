export { COMMAND_NAMES, loadCommand, loadCommands, main, VERSION } from './main.js';
export type { Io, Command } from './command.js';
