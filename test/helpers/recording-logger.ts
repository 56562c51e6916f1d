/** Keeps activities' log lines for assertions instead of printing them (MockActivityEnvironment's logger). */
import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';

export class RecordingLogger implements Logger {
  readonly entries: { level: LogLevel; message: string; meta?: LogMetadata }[] = [];
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.entries.push({ level, message, ...(meta ? { meta } : {}) });
  }
  trace = (message: string, meta?: LogMetadata): void => this.log('TRACE', message, meta);
  debug = (message: string, meta?: LogMetadata): void => this.log('DEBUG', message, meta);
  info = (message: string, meta?: LogMetadata): void => this.log('INFO', message, meta);
  warn = (message: string, meta?: LogMetadata): void => this.log('WARN', message, meta);
  error = (message: string, meta?: LogMetadata): void => this.log('ERROR', message, meta);
}
