// ReadDtmPostgres in a dtxctl built without libpq: import-dtm says so.

#include "dtm_import.h"

namespace dtx::dtxctl {

Status ReadDtmPostgres(const DtmSource&,
                       const std::function<Status(DtmTransRow)>&) {
  return UnimplementedError(
      "import-dtm: this dtxctl was built without PostgreSQL (libpq-dev)");
}

}  // namespace dtx::dtxctl
