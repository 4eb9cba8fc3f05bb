// RocksDB's info log through spdlog, instead of the LOG file RocksDB would
// write into the data directory. That file sits on the same disk as the
// data: once the disk is full, RocksDB 7.8 aborts on the next line it logs
// to it after a failed one (an assertion in its file writer; the Debian
// build keeps assertions), which would take mnemod down on a full disk.
// Logging through spdlog also puts RocksDB's warnings and errors (e.g. a
// background error and its recovery) in mnemod's own log.
//
// Levels: RocksDB's DEBUG, INFO and HEADER lines (option dumps, flush and
// compaction chatter) go to spdlog's debug level, WARN to warn, ERROR and
// FATAL to error.
#ifndef MNEMO_DB_ROCKS_LOGGER_H_
#define MNEMO_DB_ROCKS_LOGGER_H_

#include <cstdarg>
#include <memory>

#include "rocksdb/env.h"

namespace mnemo::db {

// A logger for rocksdb::DBOptions::info_log. Thread-safe.
std::shared_ptr<rocksdb::Logger> NewRocksLogger();

}  // namespace mnemo::db

#endif  // MNEMO_DB_ROCKS_LOGGER_H_
