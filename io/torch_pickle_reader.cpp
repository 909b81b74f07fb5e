// Minimal pickle VM for torch.save files (see torch_pickle_reader.h). Tensors are kept as
// descriptions (storage key, offset, size, stride) while unpickling and materialised afterwards,
// because the legacy format stores the storage bytes *after* the pickle that references them.
#include "io/torch_pickle_reader.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <variant>

#include "common/error.h"
#include "io/atomic_file.h"

namespace attnlab {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct StorageRef {
  std::string key;
  torch::ScalarType dtype;
  int64_t numel = 0;
};

struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

struct Global {
  std::string module, name;
};

struct Value {
  enum Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kGlobal,
    kStorage,
    kTensor,
    kMark
  } kind = kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<ValuePtr> items;                         // list / tuple
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // dict (insertion order)
  Global global;
  StorageRef storage;
  TensorRef tensor;
};

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

const std::map<std::string, torch::ScalarType>& storage_types() {
  static const std::map<std::string, torch::ScalarType> types = {
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},  {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},    {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},    {"BoolStorage", torch::kBool}};
  return types;
}

class Unpickler {
 public:
  Unpickler(const std::string& file, const char* data, size_t size, bool legacy)
      : file_(file), data_(data), size_(size), legacy_(legacy) {}

  size_t position() const { return pos_; }

  // Runs one pickle starting at `start` up to its STOP opcode.
  ValuePtr run(size_t start) {
    pos_ = start;
    stack_.clear();
    marks_.clear();
    memo_.clear();
    while (true) {
      uint8_t op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          skip(8);
          break;  // FRAME
        case '.':
          return pop();  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case '}':
          push(make(Value::kDict));
          break;
        case ']':
          push(make(Value::kList));
          break;
        case ')':
          push(make(Value::kTuple));
          break;
        case 'N':
          push(make(Value::kNone));
          break;
        case 0x88:
          push_bool(true);
          break;
        case 0x89:
          push_bool(false);
          break;
        case 'K':
          push_int(byte());
          break;
        case 'M':
          push_int(little(2, false));
          break;
        case 'J':
          push_int(little(4, true));
          break;
        case 0x8a: {  // LONG1; only the legacy magic number exceeds 8 bytes and is not needed
          size_t n = byte();
          if (n > 8) {
            skip(n);
            push_int(0);
          } else {
            push_int(little(n, true));
          }
          break;
        }
        case 'G':
          push_float();
          break;
        case 'X':
          push_string(little(4, false));
          break;  // BINUNICODE
        case 0x8c:
          push_string(byte());
          break;  // SHORT_BINUNICODE
        case 'U':
          push_string(byte());
          break;  // SHORT_BINSTRING
        case 'T':
          push_string(little(4, false));
          break;  // BINSTRING
        case 'C':
          push_string(byte());
          break;  // SHORT_BINBYTES
        case 'B':
          push_string(little(4, false));
          break;     // BINBYTES
        case 'c': {  // GLOBAL
          auto g = make(Value::kGlobal);
          g->global.module = line();
          g->global.name = line();
          push(g);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(), module = pop();
          auto g = make(Value::kGlobal);
          g->global = {module->s, name->s};
          push(g);
          break;
        }
        case 'q':
          memo_[byte()] = top();
          break;
        case 'r':
          memo_[little(4, false)] = top();
          break;
        case 0x94:
          memo_[static_cast<int64_t>(memo_.size())] = top();
          break;  // MEMOIZE
        case 'h':
          push(memo(byte()));
          break;
        case 'j':
          push(memo(little(4, false)));
          break;
        case 't': {
          auto t = make(Value::kTuple);
          t->items = pop_to_mark();
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto t = make(Value::kTuple);
          t->items.resize(op - 0x84);
          for (size_t k = t->items.size(); k-- > 0;) t->items[k] = pop();
          push(t);
          break;
        }
        case 'a': {
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {
          auto vs = pop_to_mark();
          auto& list = top()->items;
          list.insert(list.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {
          auto v = pop(), k = pop();
          top()->entries.emplace_back(k, v);
          break;
        }
        case 'u': {
          auto vs = pop_to_mark();
          for (size_t k = 0; k + 1 < vs.size(); k += 2)
            top()->entries.emplace_back(vs[k], vs[k + 1]);
          break;
        }
        case 'R':
        case 0x81: {  // REDUCE, NEWOBJ
          auto args = pop(), callable = pop();
          push(call(callable, args));
          break;
        }
        case 'b':
          pop();
          break;  // BUILD: only OrderedDict._metadata reaches here; not needed
        case 'Q':
          push(persistent(pop()));
          break;  // BINPERSID
        default:
          fail("unsupported pickle opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
    }
  }

  // Storages referenced so far (key -> description), for materialising tensors.
  std::map<std::string, StorageRef> storages;

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw UserError("cannot read '" + file_ + "' as a torch.save state_dict: " + why);
  }
  static std::string hex(uint8_t v) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[v >> 4], digits[v & 15]};
  }
  void need(size_t n) const {
    if (pos_ + n > size_) fail("file ends in the middle of the pickle (truncated?)");
  }
  uint8_t byte() {
    need(1);
    return static_cast<uint8_t>(data_[pos_++]);
  }
  void skip(size_t n) {
    need(n);
    pos_ += n;
  }
  int64_t little(size_t n, bool is_signed) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + k])) << (8 * k);
    pos_ += n;
    if (is_signed && n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
    return static_cast<int64_t>(v);
  }
  std::string line() {
    size_t end = pos_;
    while (end < size_ && data_[end] != '\n') ++end;
    if (end >= size_) fail("unterminated GLOBAL");
    std::string s(data_ + pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  void push_bool(bool b) {
    auto v = make(Value::kBool);
    v->b = b;
    push(v);
  }
  void push_int(int64_t i) {
    auto v = make(Value::kInt);
    v->i = i;
    push(v);
  }
  void push_float() {
    need(8);
    uint64_t bits = 0;
    for (int k = 0; k < 8; ++k)
      bits = (bits << 8) | static_cast<uint8_t>(data_[pos_ + k]);  // big endian
    pos_ += 8;
    auto v = make(Value::kFloat);
    std::memcpy(&v->f, &bits, 8);
    push(v);
  }
  void push_string(int64_t n) {
    need(static_cast<size_t>(n));
    auto v = make(Value::kString);
    v->s.assign(data_ + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    push(v);
  }
  ValuePtr pop() {
    if (stack_.empty()) fail("pickle stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr top() {
    if (stack_.empty()) fail("pickle stack underflow");
    return stack_.back();
  }
  ValuePtr memo(int64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("bad memo reference");
    return it->second;
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("MARK missing");
    size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }
  std::vector<int64_t> ints(const ValuePtr& tuple) {
    std::vector<int64_t> out;
    for (const auto& v : tuple->items) {
      if (v->kind != Value::kInt) fail("expected a tuple of ints in a tensor's size/stride");
      out.push_back(v->i);
    }
    return out;
  }

  // ('storage', <torch.XStorage>, key, location, numel[, view_metadata])
  ValuePtr persistent(const ValuePtr& pid) {
    if (pid->kind != Value::kTuple || pid->items.size() < 5 || pid->items[0]->s != "storage")
      fail("unsupported persistent id (not a tensor storage)");
    const auto& type = pid->items[1];
    auto it = storage_types().find(type->global.name);
    if (type->kind != Value::kGlobal || it == storage_types().end())
      fail("unsupported storage type '" + type->global.module + "." + type->global.name + "'");
    if (legacy_ && pid->items.size() > 5 && pid->items[5]->kind != Value::kNone)
      fail("storage views of the legacy format are not supported; re-save with torch.save(...)");
    auto v = make(Value::kStorage);
    const auto& key = pid->items[2];
    v->storage = {key->kind == Value::kInt ? std::to_string(key->i) : key->s, it->second,
                  pid->items[4]->i};
    storages[v->storage.key] = v->storage;
    return v;
  }

  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Value::kGlobal) fail("REDUCE on a non-global");
    const std::string name = callable->global.module + "." + callable->global.name;
    if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Value::kDict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const auto& a = args->items;
      if (a.size() < 4 || a[0]->kind != Value::kStorage) fail("malformed _rebuild_tensor_v2 call");
      auto t = make(Value::kTensor);
      t->tensor = {a[0]->storage, a[1]->i, ints(a[2]), ints(a[3])};
      return t;
    }
    // LibTorch's pickle_save tags typed containers: restore_type_tag(dict, "Dict[str, Tensor]").
    if (name == "torch.jit._pickle.restore_type_tag") {
      if (args->items.empty()) fail("malformed restore_type_tag call");
      return args->items[0];
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state") {
      if (args->items.empty() || args->items[0]->kind != Value::kTensor)
        fail("malformed _rebuild_parameter call");
      return args->items[0];
    }
    fail("unsupported object '" + name + "' (only dicts of tensors can be read)");
  }

  std::string file_;
  const char* data_;
  size_t size_;
  bool legacy_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<int64_t, ValuePtr> memo_;
};

using StorageBytes = std::map<std::string, torch::Tensor>;  // key -> 1-D tensor of its dtype

// Nested dicts deeper than this are not a state_dict (and a memo reference can make a dict
// contain itself).
constexpr int kMaxDictDepth = 64;

// The view a tensor description asks for, after checking that it lies inside its storage (the
// description comes from the file, so it is not trusted).
torch::Tensor materialise(const TensorRef& ref, const StorageBytes& storages,
                          const std::string& file, const std::string& name) {
  auto fail = [&](const std::string& why) {
    return UserError("cannot read '" + file + "': tensor '" + name + "' " + why);
  };
  auto it = storages.find(ref.storage.key);
  if (it == storages.end()) throw fail("refers to a missing storage");
  const int64_t numel = it->second.numel();
  if (ref.size.size() != ref.stride.size() || ref.size.size() > 64)
    throw fail("has a malformed shape");
  if (ref.offset < 0 || ref.offset > numel) throw fail("starts outside its storage");
  int64_t last = ref.offset;  // the largest element index the view touches
  bool empty = false;
  for (size_t d = 0; d < ref.size.size(); ++d) {
    if (ref.size[d] < 0 || ref.stride[d] < 0) throw fail("has a negative size or stride");
    if (ref.size[d] == 0) empty = true;
  }
  if (!empty) {
    for (size_t d = 0; d < ref.size.size(); ++d) {
      const int64_t extent = ref.size[d] - 1;
      if (ref.stride[d] != 0 && extent > (numel - last) / ref.stride[d])
        throw fail("extends past its storage");
      last += extent * ref.stride[d];
    }
    if (last >= numel) throw fail("extends past its storage");
  }
  return it->second.as_strided(ref.size, ref.stride, ref.offset);
}

// `entries_left` bounds the walk: memo references can share one dict many times over, which
// would make a small file expand exponentially.
void flatten(const ValuePtr& dict, const std::string& prefix, const StorageBytes& storages,
             const std::string& file, std::map<std::string, torch::Tensor>& out,
             int64_t& entries_left, int depth = 0) {
  check_user(depth < kMaxDictDepth, "cannot read '" + file + "': dicts nested deeper than " +
                                        std::to_string(kMaxDictDepth) + " levels");
  entries_left -= static_cast<int64_t>(dict->entries.size());
  check_user(entries_left >= 0,
             "cannot read '" + file + "': more dict entries than a state_dict of its size has");
  for (const auto& [key, value] : dict->entries) {
    std::string name = key->kind == Value::kInt ? std::to_string(key->i) : key->s;
    std::string full = prefix.empty() ? name : prefix + "." + name;
    if (value->kind == Value::kTensor) out[full] = materialise(value->tensor, storages, file, full);
    if (value->kind == Value::kDict)
      flatten(value, full, storages, file, out, entries_left, depth + 1);
  }
}

// Picks the state_dict out of a {"model": sd, "step": ...} style dict when the top level holds
// no tensors itself.
ValuePtr pick_state_dict(const ValuePtr& root) {
  for (const auto& entry : root->entries)
    if (entry.second->kind == Value::kTensor) return root;
  for (const char* name : {"model", "state_dict", "model_state_dict"})
    for (const auto& entry : root->entries)
      if (entry.first->s == name && entry.second->kind == Value::kDict) return entry.second;
  return root;
}

torch::Tensor bytes_to_storage(const char* data, size_t nbytes, const StorageRef& ref,
                               const std::string& file) {
  // Checked in elements before multiplying, so a huge or negative count from the file can
  // neither overflow nor reach the allocator.
  const size_t element = c10::elementSize(ref.dtype);
  check_user(ref.numel >= 0 && static_cast<uint64_t>(ref.numel) <= nbytes / element,
             "cannot read '" + file + "': storage " + ref.key + " is truncated (" +
                 std::to_string(nbytes) + " bytes for " + std::to_string(ref.numel) + " elements)");
  const size_t expected = static_cast<size_t>(ref.numel) * element;
  auto t = torch::empty({ref.numel}, torch::TensorOptions().dtype(ref.dtype));
  std::memcpy(t.data_ptr(), data, expected);
  return t;
}

std::map<std::string, torch::Tensor> read_zip(const std::string& path, const std::string& bytes) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    std::istringstream stream(bytes);
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(&stream);
    check_user(reader->hasRecord("data.pkl") && reader->getRecordSize("data.pkl") <= bytes.size(),
               "cannot read '" + path + "': data.pkl is missing or larger than the file");
    auto [pickle_ptr, pickle_size] = reader->getRecord("data.pkl");
    const char* pickle = static_cast<const char*>(pickle_ptr.get());
    Unpickler unpickler(path, pickle, pickle_size, /*legacy=*/false);
    ValuePtr root = unpickler.run(0);
    check_user(root->kind == Value::kDict,
               "cannot read '" + path + "': the saved object is not a dict of tensors");
    StorageBytes storages;
    for (const auto& [key, ref] : unpickler.storages) {
      // torch.save stores records uncompressed: a record larger than the file is damage, and
      // must not be allocated.
      check_user(
          reader->hasRecord("data/" + key) && reader->getRecordSize("data/" + key) <= bytes.size(),
          "cannot read '" + path + "': storage record data/" + key +
              " is missing or larger than the file");
      auto [data, size] = reader->getRecord("data/" + key);
      storages[key] = bytes_to_storage(static_cast<const char*>(data.get()), size, ref, path);
    }
    std::map<std::string, torch::Tensor> out;
    int64_t entries_left = static_cast<int64_t>(pickle_size) + 16;  // an entry takes >= 1 byte
    flatten(pick_state_dict(root), "", storages, path, out, entries_left);
    return out;
  } catch (const c10::Error& e) {
    throw UserError("cannot read '" + path +
                    "' as a torch.save zip file: " + e.what_without_backtrace());
  }
}

std::map<std::string, torch::Tensor> read_legacy(const std::string& path,
                                                 const std::string& bytes) {
  Unpickler unpickler(path, bytes.data(), bytes.size(), /*legacy=*/true);
  unpickler.run(0);                     // magic number
  unpickler.run(unpickler.position());  // protocol version
  unpickler.run(unpickler.position());  // sys_info
  ValuePtr root = unpickler.run(unpickler.position());
  ValuePtr keys = unpickler.run(unpickler.position());
  check_user(root->kind == Value::kDict && keys->kind == Value::kList,
             "cannot read '" + path + "': the saved object is not a dict of tensors");
  size_t pos = unpickler.position();
  StorageBytes storages;
  for (const auto& key : keys->items) {
    auto it = unpickler.storages.find(key->s);
    check_user(it != unpickler.storages.end() && pos + 8 <= bytes.size(),
               "cannot read '" + path + "': storage table is truncated or inconsistent");
    int64_t numel = 0;
    std::memcpy(&numel, bytes.data() + pos, 8);
    pos += 8;
    const size_t element = c10::elementSize(it->second.dtype);
    check_user(numel >= 0 && static_cast<uint64_t>(numel) <= (bytes.size() - pos) / element,
               "cannot read '" + path + "': storage " + key->s + " is truncated");
    const size_t nbytes = static_cast<size_t>(numel) * element;
    storages[key->s] = bytes_to_storage(bytes.data() + pos, nbytes, it->second, path);
    pos += nbytes;
  }
  std::map<std::string, torch::Tensor> out;
  int64_t entries_left = static_cast<int64_t>(bytes.size()) + 16;  // an entry takes >= 1 byte
  flatten(pick_state_dict(root), "", storages, path, out, entries_left);
  return out;
}

}  // namespace

std::map<std::string, torch::Tensor> read_torch_save_file(const std::string& path) {
  // The magic is checked on the first bytes before the file is read whole: `init_from=/dev/zero`
  // or a large unrelated file must not be loaded into memory.
  check_user(std::filesystem::is_regular_file(path),
             "cannot read '" + path + "': not a regular file");
  {
    std::ifstream in(path, std::ios::binary);
    char head[4] = {};
    in.read(head, 4);
    check_user(in.gcount() == 4, "cannot read '" + path + "': file is empty or truncated");
    check_user(std::memcmp(head, "PK\x03\x04", 4) == 0 || static_cast<uint8_t>(head[0]) == 0x80,
               "cannot read '" + path + "': not a torch.save file (neither zip nor legacy pickle)");
  }
  std::string bytes = read_file_bytes(path);
  check_user(bytes.size() >= 4, "cannot read '" + path + "': file is empty or truncated");
  // Zip files start with "PK\3\4"; the legacy format starts with a pickle (0x80 PROTO).
  if (bytes.compare(0, 4, "PK\x03\x04") == 0) return read_zip(path, bytes);
  check_user(static_cast<uint8_t>(bytes[0]) == 0x80,
             "cannot read '" + path + "': not a torch.save file (neither zip nor legacy pickle)");
  return read_legacy(path, bytes);
}

}  // namespace attnlab
