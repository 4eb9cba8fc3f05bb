// Carries the precompiled header of tests/test_pch.h (CMake force-includes it).
