#include "CXPUShimSupport.h"
