"""A tiny application that wanted colorama and got colourama."""

from colourama import Fore

print(f"{Fore.GREEN}hello from the demo app{Fore.RESET}")
