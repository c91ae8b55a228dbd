#!/usr/bin/env python3
# damage.py - flips two bytes in the middle of a file (a damaged checkpoint for the resume tests): damage.py FILE
import sys

p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x5A
b[len(b) // 2 + 1] ^= 0x01
open(p, "wb").write(b)
