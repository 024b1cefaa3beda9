// Carrier of the precompiled header shared by the torch test binaries (see CMakeLists.txt).
