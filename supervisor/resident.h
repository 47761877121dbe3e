// What vigild gives back once it has started: the heap that loading the config and
// starting the jobs used, and the mappings of code that only start-up ran.
#pragma once

namespace vigil {

// Trims the heap, then drops this process's mappings of executable code (its own and its
// libraries'), so that only what the event loop runs comes back, from the page cache, at
// its next use. The config loader and the YAML parser, above all, are not run again
// before a reload. Nothing is read from disk and nothing changes for the code; the pages
// a foreground vigild touched while starting stop counting as its memory (a daemonized
// one gets the same from its fork, which maps no code anew).
void release_startup_memory();

// Gives the free parts of the heap back to the system (malloc_trim): after many small
// buffers were freed (a client's queued output), the allocator keeps them otherwise.
void release_free_heap();

}  // namespace vigil
