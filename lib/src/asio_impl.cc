// asio is built once, here (ASIO_SEPARATE_COMPILATION): every other file of
// dtx::core that uses asio includes only its declarations.
#include <asio/impl/src.hpp>
