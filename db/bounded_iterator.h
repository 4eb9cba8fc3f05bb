// BoundedIterator: a RocksDB iterator over one column family that stops at
// an exclusive upper key, owning that bound (ReadOptions only borrows it).
// The scans of a namespace's key range or of a key prefix use it. Internal
// to db/.
#ifndef MNEMO_DB_BOUNDED_ITERATOR_H_
#define MNEMO_DB_BOUNDED_ITERATOR_H_

#include <memory>
#include <string>
#include <utility>

#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"

namespace mnemo::db {

class BoundedIterator {
 public:
  // Iterates `cf` of `db` (borrowed; both outlive this object) below `end`.
  // Position it with Seek; check status() after the loop.
  BoundedIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string end)
      : end_(std::move(end)), upper_(end_) {
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_;
    it_.reset(db->NewIterator(ro, cf));
  }
  BoundedIterator(const BoundedIterator&) = delete;
  BoundedIterator& operator=(const BoundedIterator&) = delete;

  rocksdb::Iterator* operator->() const { return it_.get(); }

 private:
  const std::string end_;
  const rocksdb::Slice upper_;  // views end_
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace mnemo::db

#endif  // MNEMO_DB_BOUNDED_ITERATOR_H_
