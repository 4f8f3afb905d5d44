"""posevid.app"""
