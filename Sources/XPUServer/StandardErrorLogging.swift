import Logging

/// Sends every logger of this process to standard error at `level`: what the server and the
/// pool directory do at startup (each process bootstraps logging once).
public func bootstrapStandardErrorLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
