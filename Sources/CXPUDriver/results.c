#include "CXPUDriver.h"
